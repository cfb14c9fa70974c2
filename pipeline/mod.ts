/**
 * The SENT pipeline engine: a DAG of cached stages, each node's artifact stored under a key of
 * everything that determines it, so a run recomputes exactly what changed.
 *
 * ## Contract for stage authors
 *
 * A stage is declared with `defineStage` (import it from `pipeline/stage.ts`, which keeps the
 * stage's code fingerprint small) and listed in `stages/mod.ts`:
 *
 * - `name`, `module: import.meta.url`, `doc`;
 * - `upstream`: stage names it reads (or `{ stage, match }` for a custom node rule);
 * - `configKeys` (key paths or whole sections) or `configSlice(config)`: the only config it sees,
 *   as `ctx.config`; changing any other key never reruns it;
 * - `params`: fan-out, e.g. `{ method: "train.methods", seed: "runtime.seeds" }` gives nodes
 *   `train[method=grpo,seed=1]`, …; a downstream stage with the same params maps over them
 *   one-to-one, a stage without them reads all of them (fan-in);
 * - `run(ctx)`: writes files into `ctx.outDir`. `ctx` has `upstream[stage]` / `input(stage)`
 *   (artifact dirs, manifests, `readJson`), `scratchDir` (kept per cache key across killed or
 *   failed attempts: put checkpoints there and resume from them), `rng` (xoshiro128** seeded
 *   from the node id; `rng.fork(...)` for independent sub-streams), `log`, `progress(total)`,
 *   `metrics.log(row)` (→ `metrics.jsonl`; after resuming from a checkpoint,
 *   `metrics.resume(countSavedInCheckpoint)` keeps the earlier rows) and
 *   `metrics.summary(values)` (→ manifest),
 *   `config`, `params`, `device`, `threads`, `key`;
 * - `shards` (optional): `{ count: "score.shards", run(ctx, shard), merge(ctx, shards) }` for a
 *   stage whose work is independent units (problems × samples on counter-based random streams):
 *   with a count above 1 each shard (`shard.range(total)` of the units) is its own cached
 *   artifact and task, and the merge must write exactly the files `run` writes. The count key,
 *   like every `neutral` key of the schema (`executor.*`), is not part of any cache key.
 *
 * ## Where tasks run
 *
 * `--jobs 1` runs every node and shard in the run's process; `--jobs N` in N worker processes
 * (workers.ts), each with 1/N of the thread budget; `--executor slurm` as SLURM job arrays
 * (slurm.ts). The run's process always holds the store lock and merges shards (executor.ts).
 *
 * Stages add their config keys with `registerConfigSection` (typed table: type, bounds, enum
 * values, doc, default). Stage modules are loaded at CLI start-up: import heavy modules
 * (onnxruntime-node, kernels/) lazily inside `run` with a literal `await import("…")`, which the
 * code fingerprint follows.
 *
 * ## Cache key
 *
 * sha256 of canonical JSON of: stage name, fan-out params, code fingerprint (the stage module
 * and its local import closure, not following imports into `pipeline/` itself; npm packages by
 * pinned specifier), config slice, upstream keys, engine fingerprint (`ENGINE_VERSION` of
 * fingerprint.ts — bump it when an engine change alters results —, ORT version, device, dtype,
 * Deno version).
 *
 * ## Files
 *
 * `--store DIR` (default `.sent/store`, marked by its `store.json`): artifacts at
 * `<stage>/<key[0:2]>/<key>/` with `manifest.json`; beside the store: `runs/<id>.json` (one per
 * run) and `sent.lock.json` (node → key and inputs of the last successful run), except that the
 * default store's lock file is at the project root, so that it can be committed.
 *
 * @example
 * ```ts ignore
 * // stages/tally.ts
 * import { defineStage } from "../pipeline/stage.ts";
 *
 * export const tally = defineStage<{ evaluate: { ks: number[] } }>({
 *   name: "tally",
 *   module: import.meta.url,
 *   doc: "Mean accuracy per method over seeds.",
 *   upstream: ["evaluate"],
 *   configKeys: ["evaluate.ks"],
 *   async run(ctx) {
 *     const rows = [];
 *     for (const artifact of ctx.upstream.evaluate) {
 *       const result = await artifact.readJson<{ accuracy: number }>("result.json");
 *       rows.push({ ...artifact.params, accuracy: result.accuracy });
 *       ctx.metrics.log({ node: artifact.node, accuracy: result.accuracy });
 *     }
 *     ctx.metrics.summary({ nodes: rows.length });
 *     await Deno.writeTextFile(`${ctx.outDir}/table.json`, JSON.stringify(rows));
 *   },
 * });
 * ```
 *
 * @module
 */

export { cacheKey, type NodeInputs } from "./cache_key.ts";
export { canonicalJson } from "./canonical_json.ts";
export { main } from "./cli.ts";
export type { CliOptions } from "./cli.ts";
export {
  ConfigError,
  type ConfigValues,
  getPath,
  loadConfig,
  type LoadConfigOptions,
  type ResolvedConfig,
} from "./config.ts";
export { METHODS } from "./config_core.ts";
export {
  configSchema,
  type FieldSpec,
  type FieldType,
  registerConfigSection,
  type SchemaTable,
} from "./config_schema.ts";
export {
  type CodeFingerprint,
  codeFingerprint,
  ENGINE_VERSION,
  type EngineFingerprint,
  engineFingerprint,
} from "./fingerprint.ts";
export {
  buildGraph,
  nodeId,
  type PipelineGraph,
  type PipelineNode,
  shardId,
  type ShardNode,
} from "./graph.ts";
export { sha256, sha256File } from "./hash.ts";
export { createProgress } from "./progress.ts";
export type { LockFile, NodeOutcome, RunRecord, ShardOutcome } from "./records.ts";
export { Rng, type Seed } from "./rng.ts";
export {
  type Artifact,
  defineStage,
  type Device,
  type FanOut,
  type Logger,
  type MetricsWriter,
  type Params,
  type Progress,
  type Shard,
  shardOf,
  type ShardSpec,
  type Stage,
  type StageContext,
  type StageOptions,
  type UpstreamSpec,
} from "./stage.ts";
export { type Executor, inProcessExecutor } from "./executor.ts";
export { ArtifactStore, type Manifest } from "./store.ts";
