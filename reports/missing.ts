/**
 * What a report lacks: the parts the config asks for that the artifacts do not have, so a
 * partial run's page says what is missing instead of silently showing less.
 *
 * Checked, in pipeline order: each stage of the data flow has an artifact; every
 * `train[method, seed]` of `train.methods` × `runtime.seeds` logged its steps; `results.json`
 * has every evaluated policy (base, base@tT, each method) for every seed on every eval set; every
 * artifact file was readable. On a run page, nodes that failed or were skipped in the run are
 * named with the error.
 *
 * @example
 * ```ts ignore
 * import { missingParts } from "./missing.ts";
 * missingParts(inputs); // ["results: SENT has no seed 2 on tiny-aime25", …]
 * ```
 *
 * @module
 */

import type { RunRecord } from "../pipeline/records.ts";
import { evaluatedPolicies } from "../stages/evaluate.ts";
import type { ReportInputs } from "./inputs.ts";
import { policyLabel } from "./policies.ts";

/** Stages of the data flow a complete report reads. */
export const REPORT_STAGES: readonly string[] = [
  "dataset",
  "base",
  "score",
  "curriculum",
  "train",
  "evaluate",
  "results",
];

/** One rule: lines naming what is missing. */
type Check = (inputs: ReportInputs, run?: RunRecord) => string[];

function configured<T>(
  config: Record<string, unknown>,
  section: string,
  key: string,
): T | undefined {
  return (config[section] as Record<string, unknown> | undefined)?.[key] as T | undefined;
}

/** The seeds the run asks for, or those seen when the config does not say. */
function seedsOf(inputs: ReportInputs): number[] {
  const seeds = configured<number[]>(inputs.config, "runtime", "seeds");
  if (seeds) return seeds;
  return [...new Set(inputs.train.map((t) => t.seed))];
}

const CHECKS: readonly Check[] = [
  // Every stage of the data flow has at least one artifact.
  (inputs, run) =>
    REPORT_STAGES.filter((stage) => !inputs.artifacts.some((a) => a.stage === stage)).map(
      (stage) => {
        if (!run) return `${stage}: no artifact`;
        const inRun = run.nodes.filter((n) => n.stage === stage);
        const why = inRun.length === 0
          ? "not part of this run"
          : inRun.map((n) => n.state).filter((s, i, all) => all.indexOf(s) === i).join(", ");
        return `${stage}: no artifact (${why})`;
      },
    ),
  // Every configured (method, seed) logged training metrics.
  (inputs) => {
    if (!inputs.artifacts.some((a) => a.stage === "train")) return [];
    const methods = configured<string[]>(inputs.config, "train", "methods") ?? [];
    return methods.flatMap((method) =>
      seedsOf(inputs).filter((seed) =>
        !inputs.train.some((t) => t.method === method && t.seed === seed)
      )
        .map((seed) => `train: no metrics for ${policyLabel(method)}, seed ${seed}`)
    );
  },
  // results.json has every evaluated policy × seed × eval set.
  (inputs) => {
    if (inputs.results === null) return [];
    const sets = configured<string[]>(inputs.config, "data", "evalSets") ??
      Object.keys(inputs.results.sets);
    const policies = evaluatedPolicies(inputs.config);
    return policies.flatMap((policy) =>
      seedsOf(inputs).flatMap((seed) => {
        const absent = sets.filter((set) =>
          inputs.results!.sets[set]?.[policy]?.seeds[String(seed)] === undefined
        );
        return absent.length === 0
          ? []
          : [`results: ${policyLabel(policy)} has no seed ${seed} on ${absent.join(", ")}`];
      })
    );
  },
  // Files that could not be read.
  (inputs) => inputs.problems.map((p) => `unreadable: ${p}`),
  // Nodes the run record says failed or were skipped.
  (_inputs, run) =>
    (run?.nodes ?? []).filter((n) =>
      n.state === "failed" || n.state === "skipped" || n.state === "planned"
    )
      .map((n) =>
        `${n.node} ${n.state === "planned" ? "never finished (the run was interrupted)" : n.state}${
          n.error ? `: ${n.error.split("\n")[0]}` : n.reason ? ` (${n.reason})` : ""
        }`
      ),
];

/**
 * What the report lacks.
 *
 * @param inputs The report's inputs.
 * @param run The run record, on a run page.
 * @returns One line per missing part, in pipeline order; empty for a complete run.
 */
export function missingParts(inputs: ReportInputs, run?: RunRecord): string[] {
  return CHECKS.flatMap((check) => check(inputs, run));
}
