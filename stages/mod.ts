/**
 * The stage registry: the stages of the default pipeline, which `deno task reproduce` runs.
 *
 * The data flow: dataset → base → score → curriculum → train[method, seed] →
 * evaluate[policy, seed] → results → report. `deno task reproduce` runs what is registered and
 * names the planned stages that are still missing (none now). To add a stage, write `stages/<name>.ts` with
 * `defineStage` (see `pipeline/mod.ts`) and list it here. Stage modules load at CLI start-up, so they import heavy modules
 * (onnxruntime-node, kernels/) lazily with `await import("../kernels/…")` inside `run`; the
 * code fingerprint follows such literal dynamic imports.
 *
 * @example
 * ```ts ignore
 * import { dataset } from "./dataset.ts";
 * import { train } from "./train.ts";
 * export const stages: readonly Stage[] = [dataset, train];
 * ```
 *
 * @module
 */

import type { RunOutput } from "../pipeline/cli.ts";
import type { Stage } from "../pipeline/stage.ts";
import { base } from "./base.ts";
import { curriculum } from "./curriculum.ts";
import { dataset } from "./dataset.ts";
import { evaluate } from "./evaluate.ts";
import { report } from "./report.ts";
import { results } from "./results.ts";
import { score } from "./score.ts";
import { train } from "./train.ts";

/** Stages of the default pipeline, in any order (the engine orders them by their upstream). */
export const stages: readonly Stage[] = [
  dataset,
  base,
  score,
  curriculum,
  train,
  evaluate,
  results,
  report,
];

/** Stages of the data flow that are not implemented yet, in pipeline order. */
export const PLANNED_STAGES: readonly string[] = [];

/** What a successful `reproduce` ends by printing (`results: PATH`, then `report: PATH`). */
export const RUN_OUTPUTS: readonly RunOutput[] = [
  { label: "results", stage: "results", file: "results.json" },
  { label: "report", stage: "report", file: "index.html" },
];
