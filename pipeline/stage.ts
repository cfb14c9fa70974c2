/**
 * The stage API: what a stage declares and what its `run(ctx)` receives.
 *
 * A stage is a named, cached function of (its config slice, its fan-out parameters, its
 * upstream artifacts) → one artifact directory. Import `defineStage` from this file; imports
 * into `pipeline/` are not part of a stage's code fingerprint (the engine is versioned by
 * `ENGINE_VERSION` in fingerprint.ts), so engine edits do not rerun stages.
 *
 * @example
 * ```ts
 * import { defineStage } from "../pipeline/stage.ts";
 *
 * // One node per (method, seed): train[method=grpo,seed=1], train[method=sent,seed=1], …
 * export const train = defineStage<{ train: { lr: number } }>({
 *   name: "train",
 *   module: import.meta.url,
 *   doc: "GRPO-family RL of the base policy.",
 *   upstream: ["base", "curriculum"],
 *   configKeys: ["train.lr"],
 *   params: { method: "train.methods", seed: "runtime.seeds" },
 *   async run(ctx) {
 *     const buckets = await ctx.input("curriculum").readJson<number[][]>("buckets.json");
 *     const bar = ctx.progress(buckets.length, "buckets");
 *     for (const bucket of buckets) {
 *       ctx.metrics.log({ bucket: bucket.length, lr: ctx.config.train.lr, u: ctx.rng.float() });
 *       bar.tick();
 *     }
 *     ctx.metrics.summary({ steps: buckets.length });
 *     await Deno.writeTextFile(`${ctx.outDir}/weights.json`, "[]");
 *   },
 * });
 * ```
 *
 * **Sharded stages.** A stage whose work is many independent units (problems × samples drawn from
 * counter-based random streams) can declare `shards`: a config key holding the shard count, how
 * one shard runs, and how the shards' artifacts merge into the node's. Each shard is its own
 * cached artifact; the merged artifact must be byte for byte the one `run` writes, so the shard
 * count is left out of the cache key (see {@link ShardSpec}).
 *
 * @module
 */

import type { Rng } from "./rng.ts";
import type { Manifest } from "./store.ts";

/** A fan-out parameter value. */
export type ParamValue = string | number | boolean;

/** Fan-out parameters of one node, e.g. `{ method: "sent", seed: 1 }`. */
export type Params = Readonly<Record<string, ParamValue>>;

/** Execution providers a run can target. */
export type Device = "cpu" | "webgpu" | "cuda";

/**
 * Fan-out declaration: parameter name → a config key path whose value is a list (or a single
 * value), a literal list of values, or a function of the resolved config that returns the list
 * (for values derived from several keys, e.g. the policies `evaluate` compares). Nodes are the
 * cross product, in declaration order.
 */
export type FanOut = Readonly<
  Record<
    string,
    string | readonly ParamValue[] | ((config: Record<string, unknown>) => readonly ParamValue[])
  >
>;

/** An upstream edge with an explicit rule for which upstream nodes a node reads. */
export interface UpstreamSpec {
  /** Upstream stage name. */
  stage: string;
  /**
   * Whether a node with params `down` reads the upstream node with params `up`. Default: the
   * params both stages have must be equal (a natural join, like Snakemake wildcards), so
   * `evaluate[method,seed]` reads `train` of the same method and seed, and a stage without
   * params reads every node of a fanned-out upstream.
   */
  match?: (down: Params, up: Params) => boolean;
}

/** An upstream node's artifact as a stage sees it. */
export interface Artifact {
  /** Node id, e.g. `train[method=sent,seed=1]`. */
  node: string;
  /** Stage name. */
  stage: string;
  /** Fan-out parameters of that node. */
  params: Params;
  /** Cache key (hex sha256). */
  key: string;
  /** Absolute path of the artifact directory (read-only). */
  dir: string;
  /** Its manifest: inputs, files with sha256, metrics, timings, versions. */
  manifest: Manifest;
  /**
   * Absolute path of a file inside the artifact.
   * @param file Path relative to the artifact directory.
   */
  path(file: string): string;
  /**
   * Read and parse a JSON file of the artifact.
   * @param file Path relative to the artifact directory.
   */
  readJson<T = unknown>(file: string): Promise<T>;
  /**
   * Read a text file of the artifact.
   * @param file Path relative to the artifact directory.
   */
  readText(file: string): Promise<string>;
}

/** Stage-scoped logger; lines go to stderr prefixed with the node id. */
export interface Logger {
  /** Normal progress information. */
  info(message: string): void;
  /** Something unexpected that did not stop the stage. */
  warn(message: string): void;
}

/** A progress reporter from `ctx.progress(total)`. */
export interface Progress {
  /** Advance by `n` units (default 1). */
  tick(n?: number): void;
  /** Mark finished (prints the final line). */
  done(): void;
}

/** Metrics of a node: rows over time and a final summary. */
export interface MetricsWriter {
  /** Rows logged so far in this artifact (save it in checkpoints, for `resume`). */
  readonly count: number;
  /** Append one row (e.g. one training step) to `metrics.jsonl` in the artifact. */
  log(row: Readonly<Record<string, number | string | boolean | null>>): void;
  /**
   * When resuming from a checkpoint, keep the first `rows` rows logged by the interrupted
   * attempt (the `count` saved in the checkpoint). Call before the first `log`.
   */
  resume(rows: number): void;
  /** Merge final summary values into `manifest.json`'s `metrics`. */
  summary(values: Readonly<Record<string, unknown>>): void;
}

/** What `run(ctx)` receives. `C` is the type of the stage's config slice. */
export interface StageContext<C = Record<string, unknown>> {
  /** Node id, e.g. `train[method=sent,seed=1]`. */
  node: string;
  /** Cache key of this node (hex sha256). */
  key: string;
  /** Fan-out parameters of this node. */
  params: Params;
  /** The resolved config slice this stage declared (and nothing else). */
  config: C;
  /** Execution provider of this run (`runtime.device`). */
  device: Device;
  /**
   * ORT intra-op threads this node may use: the run's budget split over `--jobs` (each worker
   * process gets its share), or `executor.cpusPerTask` under SLURM.
   */
  threads: number;
  /** Empty directory that becomes the artifact when `run` returns. */
  outDir: string;
  /** Directory kept across attempts with the same cache key: checkpoints for resuming. */
  scratchDir: string;
  /** xoshiro128** stream seeded from the node id (stage name + params). */
  rng: Rng;
  /** Logger. */
  log: Logger;
  /** Start a progress reporter over `total` units (a bar with ETA on a TTY, lines otherwise). */
  progress(total: number, label?: string): Progress;
  /** Metrics rows and summary. */
  metrics: MetricsWriter;
  /** Upstream artifacts by stage name, each list in node order. */
  upstream: Readonly<Record<string, readonly Artifact[]>>;
  /**
   * The single upstream artifact of a stage; throws when there are zero or several.
   * @param stage Upstream stage name.
   */
  input(stage: string): Artifact;
}

/**
 * What one node is expected to cost, worked out from the config alone (no artifact is read):
 * `--dry-run` prints it per stage. Counts are upper bounds where lengths vary (responses at
 * their token limit).
 */
export interface StageEstimate {
  /** Tokens the node runs through the model (sampled, scored and trained on, each pass once). */
  readonly tokens: number;
  /** Floating-point operations of those passes (a multiply-add counts 2). */
  readonly flops: number;
}

/**
 * Estimate a node's cost from the resolved config and the node's parameters; `null` when it
 * cannot be told (e.g. the model size is unknown).
 */
export type EstimateFn = (
  config: Readonly<Record<string, unknown>>,
  params: Params,
) => StageEstimate | null;

/** One shard of a sharded node: shard `index` (0-based) of `count`. */
export interface Shard {
  /** 0-based index. */
  readonly index: number;
  /** Number of shards of the node. */
  readonly count: number;
  /**
   * This shard's part of `total` work units: the half-open range [start, end). The ranges of a
   * node's shards are contiguous, in order, cover 0 … total − 1, and differ in size by at most one.
   * @param total Work units of the whole node.
   * @returns `[start, end)`.
   */
  range(total: number): readonly [start: number, end: number];
}

/**
 * How a stage's work splits into shards. The stage's own `run` stays the one-process path (a
 * shard count of 1 runs it unchanged); with a count above 1 the engine runs `run` of the spec
 * once per shard, each into its own cached artifact (a failed shard reruns alone), then `merge`
 * once with every shard's artifact.
 *
 * Contract: merging the shards must write exactly the files `run` writes, byte for byte, for any
 * shard count. So a shard's result must not depend on which other units share its process:
 * random numbers come from counter streams keyed by the work unit (never from `ctx.rng`, which is
 * seeded per shard), and batching must not change numbers.
 */
export interface ShardSpec<C> {
  /**
   * Config key path holding the shard count (an int ≥ 1), e.g. `score.shards`. It is left out of
   * the node's config slice, hence of its cache key: any count gives the same artifact.
   */
  count: string;
  /**
   * Produce one shard's partial artifact in `ctx.outDir` (`ctx.node` and `ctx.key` are the
   * shard's).
   * @param ctx The shard's context.
   * @param shard Which shard.
   */
  run(ctx: StageContext<C>, shard: Shard): Promise<void>;
  /**
   * Combine the shards' artifacts, in shard order, into `ctx.outDir` (the node's context).
   * @param ctx The node's context.
   * @param shards The shards' artifacts, shard 0 first.
   */
  merge(ctx: StageContext<C>, shards: readonly Artifact[]): Promise<void>;
}

/**
 * A shard's range of `total` units: [⌊index·total/count⌋, ⌊(index+1)·total/count⌋).
 *
 * @param index 0-based shard index.
 * @param count Number of shards (≥ 1).
 * @returns The shard.
 * @example
 * ```ts
 * import { shardOf } from "./stage.ts";
 * shardOf(1, 3).range(10); // [3, 6]
 * ```
 */
export function shardOf(index: number, count: number): Shard {
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0) {
    throw new Error(`shardOf(${index}, ${count}): expected integers with 0 ≤ index < count`);
  }
  if (index >= count) {
    throw new Error(`shardOf(${index}, ${count}): index must be below the count`);
  }
  return Object.freeze({
    index,
    count,
    range: (total: number) =>
      [Math.floor(index * total / count), Math.floor((index + 1) * total / count)] as const,
  });
}

/** Declaration of a stage, as passed to {@link defineStage}. */
export interface StageOptions<C> {
  /** Stage name: lowercase letters, digits and `_`, starting with a letter. */
  name: string;
  /** `import.meta.url` of the stage's module: the root of its code fingerprint. */
  module: string;
  /** One line: what the artifact holds. */
  doc?: string;
  /** Upstream stages, by name or with an explicit node-matching rule. */
  upstream?: readonly (string | UpstreamSpec)[];
  /** Config key paths (keys or whole sections) the stage reads; they form `ctx.config`. */
  configKeys?: readonly string[];
  /** Alternative to `configKeys`: compute the slice from the whole config. */
  configSlice?: (config: Record<string, unknown>) => C;
  /** Fan-out parameters (one node per combination). */
  params?: FanOut;
  /**
   * True when `run` computes with ONNX Runtime (kernels/): the execution provider
   * (`runtime.device`), the compute dtype (`runtime.dtype`) and the ORT version then enter the
   * node's cache key, and a run checks the device at start-up. Default false: the artifact is
   * the same on every device, and so is its key (a dataset made on a laptop is reused on a GPU).
   */
  engine?: boolean;
  /** Optional: the cost of one node, for `--dry-run` (see {@link StageEstimate}). */
  estimate?: EstimateFn;
  /** Optional: how the node's work splits into shards (see {@link ShardSpec}). */
  shards?: ShardSpec<C>;
  /** Produce the artifact in `ctx.outDir`. */
  run(ctx: StageContext<C>): Promise<void>;
}

/** A defined stage. */
export interface Stage<C = Record<string, unknown>> {
  /** Stage name. */
  readonly name: string;
  /** Module URL (code fingerprint root). */
  readonly module: string;
  /** One-line description. */
  readonly doc: string;
  /** Upstream edges, normalised. */
  readonly upstream: readonly UpstreamSpec[];
  /** Config keys read (empty when `configSlice` is used). */
  readonly configKeys: readonly string[];
  /** Slice function, when given instead of `configKeys`. */
  configSlice?(config: Record<string, unknown>): C;
  /** Fan-out parameters. */
  readonly params: FanOut;
  /** Whether the stage runs ONNX Runtime. */
  readonly engine: boolean;
  /** Cost of one node for `--dry-run`, when the stage can tell. */
  readonly estimate?: EstimateFn;
  /** How the work splits into shards, for stages that can be sharded. */
  readonly shards?: ShardSpec<C>;
  /** Body (method syntax, so stages with different slice types fit in one list). */
  run(ctx: StageContext<C>): Promise<void>;
}

const NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Declare a stage.
 *
 * @param options Name, module, upstream, config slice, fan-out and `run`.
 * @returns The stage, ready to be listed in a stage registry (`stages/mod.ts`).
 * @throws {Error} On an invalid name, module URL, parameter name, or both slice forms at once.
 */
export function defineStage<C = Record<string, unknown>>(options: StageOptions<C>): Stage<C> {
  const where = `defineStage("${options.name}")`;
  if (!NAME.test(options.name)) {
    throw new Error(`${where}: name must match ${NAME} (lowercase, digits, _)`);
  }
  if (!options.module.startsWith("file:")) {
    throw new Error(
      `${where}: module is "${options.module}"; expected import.meta.url of a local file`,
    );
  }
  if (options.configKeys !== undefined && options.configSlice !== undefined) {
    throw new Error(`${where}: give configKeys or configSlice, not both`);
  }
  for (const param of Object.keys(options.params ?? {})) {
    if (!/^[a-zA-Z][a-zA-Z0-9_]*$/.test(param)) {
      throw new Error(`${where}: parameter name "${param}" must be an identifier`);
    }
  }
  if (
    options.shards !== undefined && !/^[a-zA-Z][\w]*(\.[a-zA-Z][\w]*)+$/.test(options.shards.count)
  ) {
    throw new Error(
      `${where}: shards.count is "${options.shards.count}"; expected a config key path such as "score.shards"`,
    );
  }
  return Object.freeze({
    name: options.name,
    module: options.module,
    doc: options.doc ?? "",
    upstream: (options.upstream ?? []).map((edge) =>
      typeof edge === "string" ? { stage: edge } : edge
    ),
    configKeys: options.configKeys ?? [],
    configSlice: options.configSlice,
    params: options.params ?? {},
    engine: options.engine ?? false,
    estimate: options.estimate,
    shards: options.shards,
    run: options.run,
  });
}
