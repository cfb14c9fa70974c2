/**
 * The stage registry: the stages of the default pipeline, which `deno task reproduce` runs.
 *
 * Empty for now: the real stages (dataset, base, score, curriculum, train, evaluate, report)
 * come from later issues, and until then every pipeline command says that no stages are
 * registered. To add one, write `stages/<name>.ts` with `defineStage` (see `pipeline/mod.ts`)
 * and list it here. Stage modules load at CLI start-up, so they import heavy modules
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

import type { Stage } from "../pipeline/stage.ts";

/** Stages of the default pipeline, in any order (the engine orders them by their upstream). */
export const stages: readonly Stage[] = [];
