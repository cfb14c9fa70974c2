/**
 * Where a report's numbers came from, gathered from the artifacts' manifests (and, on a
 * published run page, from the run's record):
 *
 * - the resolved config, and every seed in it;
 * - versions (Deno, ONNX Runtime, OS) and the execution provider and dtype of the ONNX Runtime
 *   stages, each distinct combination with the nodes that used it;
 * - the machine the report was built on (manifests record only the OS and architecture of the
 *   machines that ran the stages);
 * - per node: cache key, the run that made the artifact, when and how long; per stage: total
 *   seconds. Nodes made by the newest run among them are told apart from those reused from
 *   earlier runs; a run page shows instead what the run record says (ran, cached, failed, …);
 * - the inferred method choices with the run's values ({@link inferredChoices}).
 *
 * @example
 * ```ts ignore
 * import { buildProvenance } from "./provenance.ts";
 * const p = buildProvenance(inputs, { machine, tools });
 * p.stages; // [{ stage: "dataset", nodes: 1, seconds: 0.12 }, …]
 * ```
 *
 * @module
 */

import * as aq from "arquero";
import type { LockFile, NodeOutcome, RunRecord } from "../pipeline/records.ts";
import { inferredChoices, type InferredRow } from "./inferred.ts";
import type { ReportInputs } from "./inputs.ts";
import type { Machine } from "./machine.ts";

/** One node's line. */
export interface NodeProvenance {
  /** Node id. */
  node: string;
  /** Stage. */
  stage: string;
  /** Cache key. */
  key: string;
  /** Run that made the artifact. */
  madeBy: string;
  /** When it started (ISO). */
  startedAt: string;
  /** Seconds it took. */
  seconds: number;
  /** Execution provider, dtype and ORT version (ONNX Runtime stages only). */
  engine: string;
  /** What the run record says happened to it in this run (run pages only). */
  state?: string;
  /** Why (run pages only): the reason it ran, or the error. */
  reason?: string;
  /** Whether `sent.lock.json` records this node with this key (run pages only). */
  pinned?: boolean;
}

/** A distinct set of values and the nodes that share it. */
export interface Shared {
  /** The values, as `name value` text. */
  value: string;
  /** How many nodes. */
  nodes: number;
  /** Their stages. */
  stages: string;
}

/** The report's provenance section. */
export interface Provenance {
  /** Resolved config. */
  config: Record<string, unknown>;
  /** Whether the config is the union of the stages' slices (no report node to read it from). */
  configFromSlices: boolean;
  /** Every seed of the config, `key = value`. */
  seeds: string[];
  /** Distinct tool versions of the artifacts. */
  versions: Shared[];
  /** Distinct engine settings (ONNX Runtime stages). */
  engines: Shared[];
  /** The machine that built the report. */
  machine: Machine | null;
  /** Versions of the report's own packages. */
  tools: Record<string, string>;
  /** Per node, in pipeline order. */
  nodes: NodeProvenance[];
  /** Total seconds per stage (arquero rollup). */
  stages: { stage: string; nodes: number; seconds: number }[];
  /** The newest run among the artifacts' makers (null without artifacts). */
  newestRun: string | null;
  /** The run record behind a run page (absent in the stage's own report). */
  run?: RunSummary;
  /** Inferred method choices with this run's values. */
  inferred: InferredRow[];
}

/** What a run page says about its run. */
export interface RunSummary {
  /** Run id. */
  id: string;
  /** The command line. */
  command: string;
  /** Preset. */
  preset: string;
  /** `--set` overrides. */
  overrides: readonly string[];
  /** ok / failed / running (killed). */
  status: string;
  /** ISO start and end. */
  startedAt: string;
  /** ISO end (empty while running). */
  finishedAt: string;
  /** Node count per state, e.g. `{ ran: 3, cached: 24 }`. */
  states: Record<string, number>;
  /** Seconds the run's nodes took in this run. */
  seconds: number;
}

/** Options for {@link buildProvenance}. */
export interface ProvenanceOptions {
  /** The machine building the report. */
  machine?: Machine | null;
  /** Package versions of the report's tools. */
  tools?: Record<string, string>;
  /** A run page's record. */
  run?: RunRecord;
  /** Whether the config was rebuilt from slices. */
  configFromSlices?: boolean;
  /** The store's lock file (run pages: which keys it pins). */
  lock?: LockFile | null;
}

const STAGE_ORDER = [
  "dataset",
  "base",
  "score",
  "curriculum",
  "train",
  "evaluate",
  "results",
  "report",
];

/** Every `seed`-named key of the config (and `runtime.seeds`), as `path = value`. */
function seedsOf(config: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(config).flatMap(([key, value]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return seedsOf(value as Record<string, unknown>, path);
    }
    return /^seeds?$/.test(key) ? [`${path} = ${JSON.stringify(value)}`] : [];
  });
}

/** Group nodes by a text value. */
function shared(
  nodes: readonly NodeProvenance[],
  valueOf: (n: NodeProvenance) => string,
): Shared[] {
  const groups = new Map<string, NodeProvenance[]>();
  for (const node of nodes) {
    const value = valueOf(node);
    if (value === "") continue;
    groups.set(value, [...(groups.get(value) ?? []), node]);
  }
  return [...groups].map(([value, list]) => ({
    value,
    nodes: list.length,
    stages: [...new Set(list.map((n) => n.stage))].join(", "),
  }));
}

/** A node's ONNX Runtime settings from its key inputs, empty for stages without ORT. */
function engineOf(engine: Record<string, unknown> | undefined): string {
  if (!engine || engine.device === undefined) return "";
  return `${engine.device} · ${engine.dtype} · ORT ${engine.ort}`;
}

/** Stage order, then node id in code-unit order. */
function byPipeline(
  a: { stage: string; node: string },
  b: { stage: string; node: string },
): number {
  const rank = (
    s: string,
  ) => (STAGE_ORDER.includes(s) ? STAGE_ORDER.indexOf(s) : STAGE_ORDER.length);
  return rank(a.stage) - rank(b.stage) || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);
}

/**
 * The provenance of a report.
 *
 * @param inputs The report's inputs (artifacts with manifests, config).
 * @param options Machine, tool versions, and a run page's record.
 * @returns The provenance model.
 */
export function buildProvenance(inputs: ReportInputs, options: ProvenanceOptions = {}): Provenance {
  const outcomes = new Map<string, NodeOutcome>((options.run?.nodes ?? []).map((n) => [n.node, n]));
  const nodes: NodeProvenance[] = inputs.artifacts.map((a) => {
    const outcome = outcomes.get(a.node);
    return {
      node: a.node,
      stage: a.stage,
      key: a.key,
      madeBy: a.manifest.run,
      startedAt: a.manifest.timings.startedAt,
      seconds: a.manifest.timings.seconds,
      engine: engineOf(a.manifest.inputs.engine as unknown as Record<string, unknown>),
      ...(outcome ? { state: outcome.state, reason: outcome.error ?? outcome.reason } : {}),
    };
  });
  // Nodes of the run record that have no artifact (failed, skipped, collected) still get a line.
  for (const outcome of outcomes.values()) {
    if (nodes.some((n) => n.node === outcome.node)) continue;
    nodes.push({
      node: outcome.node,
      stage: outcome.stage,
      key: outcome.key,
      madeBy: "",
      startedAt: "",
      seconds: outcome.seconds,
      engine: "",
      state: outcome.state,
      reason: outcome.error ?? outcome.reason,
    });
  }
  if (options.run) {
    for (const node of nodes) node.pinned = options.lock?.nodes[node.node]?.key === node.key;
  }
  nodes.sort(byPipeline);
  const made = nodes.filter((n) => n.madeBy !== "");
  const stages = made.length === 0
    ? []
    : (aq.from(made.map((n) => ({ stage: n.stage, seconds: n.seconds })))
      .groupby("stage")
      .rollup({ nodes: aq.op.count(), seconds: aq.op.sum("seconds") })
      .objects() as { stage: string; nodes: number; seconds: number }[])
      .sort((a, b) => byPipeline({ stage: a.stage, node: "" }, { stage: b.stage, node: "" }));
  const versionText = (a: (typeof inputs.artifacts)[number]) =>
    Object.entries(a.manifest.versions ?? {}).map(([k, v]) => `${k} ${v}`).join(" · ");
  const versionOf = new Map(inputs.artifacts.map((a) => [a.node, versionText(a)]));
  return {
    config: inputs.config,
    configFromSlices: options.configFromSlices ?? false,
    seeds: seedsOf(inputs.config),
    versions: shared(made, (n) => versionOf.get(n.node) ?? ""),
    engines: shared(made, (n) => n.engine),
    machine: options.machine ?? null,
    tools: options.tools ?? {},
    nodes,
    stages,
    newestRun: made.map((n) => n.madeBy).sort().at(-1) ?? null,
    ...(options.run ? { run: runSummary(options.run) } : {}),
    inferred: inferredChoices(inputs.config),
  };
}

/** The run-record summary of a run page. */
function runSummary(record: RunRecord): RunSummary {
  const states: Record<string, number> = {};
  for (const node of record.nodes) states[node.state] = (states[node.state] ?? 0) + 1;
  return {
    id: record.id,
    command: record.argv.join(" "),
    preset: record.preset,
    overrides: record.overrides,
    status: record.status,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    states,
    seconds: record.nodes.reduce((s, n) => s + n.seconds, 0),
  };
}
