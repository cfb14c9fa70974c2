/**
 * A policy at run time: one Qwen2 model's weights plus its compiled programs (prefill, decode,
 * score, forward), fed the same weight tensors on every run.
 *
 * Weights are held as float32 host arrays under their HF names. On the CPU EP a fed host array is
 * read in place, so no run copies the weights; replacing them after a training step is a pointer
 * swap (`setWeights`). Programs are compiled on first use and cached per kind.
 *
 * Token batches are row-major `[batch, length]` int32 arrays (the engine's graphs take int32 ids,
 * masks and positions; see transformer.ts): token ids, an attention mask (1 = real token) and
 * position ids that count real tokens only, so a left-padded prompt sees the same positions as
 * the unpadded one (see {@link padBatch}).
 *
 * @example
 * ```ts
 * import { initWeights, padBatch, Policy } from "./policy.ts";
 * import { tinyPolicyConfig } from "./transformer.ts";
 * const config = tinyPolicyConfig(32);
 * const policy = Policy.create(config, initWeights(config, { seed: 1 }));
 * const batch = padBatch([[1, 5, 6], [1, 7]], { padId: 0 });
 * const { logits } = await policy.prefill(batch); // [2, 32], last position of each row
 * await policy.release();
 * ```
 *
 * @module
 */

import type { AdamWOptions } from "./adamw.ts";
import { GraphBuilder } from "./builder.ts";
import { CheckpointError, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { counterUniform, streamKey } from "./counter_rng.ts";
import { chosenLogProb, tokenEntropy } from "./fused.ts";
import { chunkedHead, type HeadChunking, scoreChunking } from "./_chunk_head.ts";
import type { ConstTensor, Graph } from "./ir.ts";
import type { Float32Storage } from "./safetensors.ts";
import { compile, type Device, HostTensor, type Program, type Tensor } from "./session.ts";
import {
  buildDecoderGraph,
  buildLossGraph,
  type CacheMode,
  KV_NAMES,
  type LossBuilder,
  nextTokenPredictions,
  parameterShapes,
  queryBlocksFit,
  type Qwen2Config,
  qwen2ConfigFromHF,
  qwen2ConfigToHF,
} from "./transformer.ts";
import { buildTrainStep, Trainer, type TrainerOptions, type TrainStep } from "./train_step.ts";

// ----- token batches ------------------------------------------------------------------------------

/** Sequences of one batch, padded to one length. */
export interface TokenBatch {
  /** Rows. */
  readonly batch: number;
  /** Columns (the padded length). */
  readonly length: number;
  /** Token ids [batch, length]; pads hold the pad id. */
  readonly ids: Int32Array;
  /** 1 for real tokens, 0 for padding [batch, length]. */
  readonly mask: Int32Array;
  /** Position of each token among its row's real tokens (0 for pads) [batch, length]. */
  readonly positions: Int32Array;
}

/** Options of {@link padBatch}. */
export interface PadOptions {
  /** Id written into padding. */
  padId: number;
  /** `left` (default) aligns the ends, as generation needs; `right` aligns the starts. */
  side?: "left" | "right";
  /** Pad to at least this length (default: the longest sequence). */
  length?: number;
}

/**
 * Pad token sequences into a batch with mask and position ids.
 *
 * @param sequences Token ids per row (each non-empty).
 * @param options Pad id, side and length.
 * @returns The batch.
 */
export function padBatch(
  sequences: readonly (readonly number[])[],
  options: PadOptions,
): TokenBatch {
  const batch = sequences.length;
  const length = Math.max(options.length ?? 0, ...sequences.map((s) => s.length));
  const ids = new Int32Array(batch * length).fill(options.padId);
  const mask = new Int32Array(batch * length);
  const positions = new Int32Array(batch * length);
  sequences.forEach((seq, r) => {
    if (seq.length === 0) throw new Error(`padBatch(): sequence ${r} is empty`);
    const start = options.side === "right" ? 0 : length - seq.length;
    seq.forEach((id, k) => {
      ids[r * length + start + k] = id;
      mask[r * length + start + k] = 1;
      positions[r * length + start + k] = k;
    });
  });
  return { batch, length, ids, mask, positions };
}

function batchFeeds(batch: TokenBatch): Record<string, HostTensor> {
  const dims = [batch.batch, batch.length];
  return {
    input_ids: new HostTensor("int32", dims, batch.ids),
    attention_mask: new HostTensor("int32", dims, batch.mask),
    position_ids: new HostTensor("int32", dims, batch.positions),
  };
}

// ----- weights ------------------------------------------------------------------------------------

/** Options of {@link initWeights}. */
export interface InitOptions {
  /** Seed of the initial values. */
  seed: number | string;
  /** Standard deviation of matrices (HF `initializer_range`); default 0.02. */
  std?: number;
}

/**
 * Random initial weights as HF initialises Qwen2: matrices ~ N(0, std²), biases 0, norm scales 1.
 * Deterministic in the seed.
 *
 * @param config The architecture.
 * @param options Seed and standard deviation.
 * @returns Weights by HF name.
 */
export function initWeights(config: Qwen2Config, options: InitOptions): Map<string, Float32Array> {
  const std = options.std ?? 0.02;
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of parameterShapes(config)) {
    const n = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    if (name.endsWith("norm.weight")) data.fill(1);
    else if (shape.length === 2) {
      const key = streamKey(options.seed, "init", name);
      for (let i = 0; i < n; i += 2) {
        // Box–Muller on two counter-based uniforms: a pair of independent normals.
        const u1 = 1 - counterUniform(key, i);
        const u2 = counterUniform(key, i + 1);
        const r = std * Math.sqrt(-2 * Math.log(u1));
        data[i] = r * Math.cos(2 * Math.PI * u2);
        if (i + 1 < n) data[i + 1] = r * Math.sin(2 * Math.PI * u2);
      }
    }
    out.set(name, data);
  }
  return out;
}

/** Whether AdamW's weight decay applies to a weight: matrices yes, biases and norm scales no. */
export function decays(name: string): boolean {
  return !name.endsWith(".bias") && !name.endsWith("norm.weight");
}

function checkWeights(
  where: string,
  config: Qwen2Config,
  weights: ReadonlyMap<string, Float32Array>,
): Map<string, HostTensor> {
  const shapes = parameterShapes(config);
  const problems: string[] = [];
  const out = new Map<string, HostTensor>();
  for (const [name, shape] of shapes) {
    const data = weights.get(name);
    const n = shape.reduce((a, d) => a * d, 1);
    if (!data) problems.push(`missing tensor ${name}: expected float32 [${shape.join(",")}]`);
    else if (!(data instanceof Float32Array) || data.length !== n) {
      problems.push(
        `tensor ${name} has ${data.length} ${data.constructor.name} elements, expected a ` +
          `Float32Array of ${n} ([${shape.join(",")}])`,
      );
    } else out.set(name, new HostTensor("float32", shape, data));
  }
  for (const name of weights.keys()) {
    if (!shapes.has(name)) problems.push(`unexpected tensor ${name}`);
  }
  if (problems.length > 0) throw new Error(`${where}:\n  ${problems.join("\n  ")}`);
  return out;
}

// ----- graphs of the programs ---------------------------------------------------------------------

/** The programs a policy compiles, by kind. */
export type ProgramKind = "prefill" | "decode" | "decode_concat" | "forward" | "score";

/** Options of {@link buildScoreGraph}. */
export interface ScoreOptions {
  /** Divide logits by this before the softmax (the sampling temperature); default 1. */
  temperature?: number;
  /**
   * Chunk the output head over positions (kernels/_chunk_head.ts), so no run holds the logits
   * of the whole batch: default `scoreChunking(V, W)` of each batch (none below a 16,384-token
   * vocabulary); null for whole logits. Same results either way, to float rounding.
   */
  chunking?: HeadChunking | null;
  /**
   * Run each layer's attention in this many blocks of consecutive query positions
   * (`blockedAttention` of kernels/transformer.ts), so no run holds the [H, T, T] scores of a
   * whole long row: default `scoreQueryBlocks(config, T)` of each batch (none for short rows);
   * null or 1 for whole attention. Same results either way, to float rounding.
   */
  queryBlocks?: number | null;
}

/**
 * The score graph: full sequences → per-token log-prob of the next token and entropy of the
 * next-token distribution, for positions 0 … T−2 (predicting tokens 1 … T−1). Uses the fused
 * log-prob and entropy graphs of `fused.ts`.
 *
 * Inputs: `input_ids`, `attention_mask`, `position_ids`, all int32 [batch, seq], then the weights.
 * Outputs: `logprobs` [batch, seq − 1] and `entropy` [batch, seq − 1].
 *
 * @param config The architecture.
 * @param options Temperature, head chunking, query blocks.
 * @returns The graph.
 */
export function buildScoreGraph(config: Qwen2Config, options: ScoreOptions = {}): Graph {
  const b = new GraphBuilder("qwen2_score");
  const p = nextTokenPredictions(b, config, { queryBlocks: options.queryBlocks ?? 1 });
  const t = { temperature: options.temperature };
  if (options.chunking) {
    const head = { hidden: p.hidden, weight: p.headWeight, targets: p.targets };
    const { logp, entropy } = chunkedHead(b, head, { ...t, chunking: options.chunking });
    b.output(logp, "logprobs");
    b.output(entropy, "entropy");
  } else {
    b.output(chosenLogProb(b, p.logits, p.targets, t), "logprobs");
    b.output(tokenEntropy(b, p.logits, t), "entropy");
  }
  return b.build();
}

const GRAPHS: Readonly<Record<ProgramKind, (c: Qwen2Config, o: ScoreOptions) => Graph>> = {
  prefill: (c) => buildDecoderGraph(c, { cache: "none", logits: "last", name: "qwen2_prefill" }),
  decode: (c) => buildDecoderGraph(c, { cache: "slots", logits: "last", name: "qwen2_decode" }),
  decode_concat: (c) =>
    buildDecoderGraph(c, { cache: "concat", logits: "last", name: "qwen2_decode_concat" }),
  forward: (c) => buildDecoderGraph(c, { cache: "none", logits: "all", name: "qwen2_forward" }),
  score: (c, o) => buildScoreGraph(c, o),
};

// ----- the runtime ------------------------------------------------------------------------------

/** Options of {@link Policy.create} and {@link Policy.load}. */
export interface PolicyOptions {
  /** Execution provider; default cpu. */
  device?: Device;
  /** ORT intra-op threads; default the machine's core count. */
  threads?: number;
  /** Version of the initial weights (see {@link Policy.version}); default 0. */
  version?: number;
}

/** Options of {@link Policy.setWeights}. */
export interface SetWeightsOptions {
  /**
   * Version of the new weights, e.g. the trainer's update count they come from. Default
   * `undefined` (unknown), which never matches a followed source (see {@link Policy.follow}).
   */
  version?: number;
}

/** A policy run while its weights lag the source it follows (see {@link Policy.follow}). */
export class StaleWeightsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StaleWeightsError";
  }
}

/** Options of {@link Policy.save}. */
export interface SavePolicyOptions {
  /** Storage dtype of the weights: F32 (default, exact), BF16 or F16. */
  float32As?: Float32Storage;
  /** Shard the weights above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Extra `config.json` keys (token ids, …). */
  config?: Record<string, unknown>;
}

/** Keys and values of every layer, [B, K, n, E] each, as host arrays. */
export interface KvArrays {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  /** n: positions held. */
  readonly length: number;
}

/** What prefill returns. */
export interface PrefillResult {
  /** Logits of each row's last position [batch, vocab]. */
  readonly logits: Float32Array;
  /** The prompt's keys and values (n = the batch's padded length). */
  readonly kv: KvArrays;
}

/** Inputs of one slot-cache decode step (see `CacheMode` "slots" in transformer.ts). */
export interface SlotStep {
  /** Rows. */
  readonly batch: number;
  /** Cache slots C. */
  readonly slots: number;
  /** The token fed to each row [batch]. */
  readonly ids: Int32Array;
  /** Its position [batch]. */
  readonly positions: Int32Array;
  /** 1 for each filled slot [batch, slots]. */
  readonly slotMask: Int32Array;
  /** Per layer, keys and values [batch, K, slots, E] (read in place). */
  readonly cache: KvArrays;
}

/** What a slot-cache decode step returns. */
export interface SlotStepResult {
  /** Logits [batch, vocab]. */
  readonly logits: Float32Array;
  /** The new token's key and value per layer, [batch, K, 1, E] each. */
  readonly kv: KvArrays;
}

/** Inputs of one Optimum-style decode step (past → present). */
export interface ResidentStep {
  /** Rows. */
  readonly batch: number;
  /** The token fed to each row [batch]. */
  readonly ids: Int32Array;
  /** Its position [batch]. */
  readonly positions: Int32Array;
  /** Mask over past + this token [batch, length]. */
  readonly mask: Int32Array;
  /** Past length + 1. */
  readonly length: number;
}

/** Logits plus per-layer present tensors (key, value, key, value, … by layer). */
export interface ResidentResult {
  /** Logits of the last position [batch, vocab] (on the host). */
  readonly logits: Float32Array;
  /** `present.{i}.key`, `present.{i}.value` for i = 0 … L−1, resident on webgpu. */
  readonly present: Tensor[];
}

/** Per-token scores of full sequences. */
export interface ScoreResult {
  /** log p(token t+1 | tokens ≤ t) [batch, length − 1]. */
  readonly logprobs: Float32Array;
  /** Entropy of the next-token distribution at t [batch, length − 1]. */
  readonly entropy: Float32Array;
}

/** A model's weights plus its compiled programs. */
export class Policy {
  /** The architecture. */
  readonly config: Qwen2Config;
  readonly device: Device;
  readonly threads: number;
  #weights: Map<string, HostTensor>;
  #version: number | undefined;
  #source: { readonly name: string; readonly version: () => number } | undefined;
  #programs = new Map<string, Promise<Program>>();

  private constructor(config: Qwen2Config, weights: Map<string, HostTensor>, o: PolicyOptions) {
    this.config = config;
    this.#weights = weights;
    this.#version = o.version ?? 0;
    this.device = o.device ?? "cpu";
    this.threads = o.threads ?? navigator.hardwareConcurrency;
  }

  /**
   * A policy from weights in memory.
   *
   * @param config The architecture.
   * @param weights Float32 weights by HF name (kept, not copied).
   * @param options Device and threads.
   * @returns The policy.
   * @throws Error listing every missing, misshapen or unexpected tensor.
   */
  static create(
    config: Qwen2Config,
    weights: ReadonlyMap<string, Float32Array>,
    options: PolicyOptions = {},
  ): Policy {
    return new Policy(config, checkWeights("Policy.create", config, weights), options);
  }

  /**
   * Load an HF checkpoint directory: `config.json` plus `model.safetensors` or shards. 16-bit
   * weights are converted to float32. Tensor names and shapes are checked against the config
   * before any data is read.
   *
   * @param dir The checkpoint directory.
   * @param options Device and threads.
   * @returns The policy.
   * @throws ConfigError for a bad config; CheckpointError naming each missing, misshapen or
   *   unexpected tensor.
   */
  static async load(dir: string, options: PolicyOptions = {}): Promise<Policy> {
    const configText = await Deno.readTextFile(`${dir}/config.json`).catch((e) => {
      throw new CheckpointError(dir, [`cannot read config.json: ${(e as Error).message}`]);
    });
    const config = qwen2ConfigFromHF(JSON.parse(configText));
    const { tensors } = await loadCheckpoint(dir, {
      expect: parameterShapes(config),
      // Old exports carry RoPE buffers; tied checkpoints sometimes repeat the embedding as lm_head.
      allowExtra: (name) =>
        name.endsWith("rotary_emb.inv_freq") ||
        (config.tieWordEmbeddings && name === "lm_head.weight"),
    });
    const weights = new Map<string, Float32Array>();
    for (const [name, t] of tensors) weights.set(name, asFloat32(dir, name, t));
    return Policy.create(config, weights, options);
  }

  /**
   * Save as an HF checkpoint directory (`config.json` + safetensors) that `transformers` opens.
   *
   * @param dir Destination directory.
   * @param options Storage dtype, shard size and extra config keys.
   */
  async save(dir: string, options: SavePolicyOptions = {}): Promise<void> {
    const tensors = new Map(
      [...this.#weights].map(([name, t]) => [name, { dtype: t.dtype, dims: t.dims, data: t.data }]),
    );
    const hf = qwen2ConfigToHF(this.config, {
      ...(options.float32As === "BF16" ? { torch_dtype: "bfloat16" } : {}),
      ...options.config,
    });
    await saveCheckpoint(dir, hf, tensors, {
      float32As: options.float32As,
      maxShardBytes: options.maxShardBytes,
    });
  }

  /** The weights by HF name (the arrays the programs read; do not modify during a run). */
  get weights(): ReadonlyMap<string, Float32Array> {
    return new Map([...this.#weights].map(([n, t]) => [n, t.data as Float32Array]));
  }

  /**
   * Replace the weights (e.g. after a training step); programs stay compiled. The arrays are
   * kept, not copied.
   *
   * @param weights Every weight by HF name.
   * @param options The new weights' version (default unknown).
   */
  setWeights(weights: ReadonlyMap<string, Float32Array>, options: SetWeightsOptions = {}): void {
    this.#weights = checkWeights("Policy.setWeights", this.config, weights);
    this.#version = options.version;
  }

  /**
   * Which weights these are: 0 (or the creation option) for the initial weights, then whatever
   * {@link setWeights} was told; `undefined` when weights were set without a version.
   */
  get version(): number | undefined {
    return this.#version;
  }

  /**
   * Follow a source of weights (e.g. a trainer): from now on every run (prefill, decode, score,
   * forward, and so `generate`) first checks that {@link version} equals `source.version()` and
   * throws {@link StaleWeightsError} otherwise, so these weights can never silently lag it.
   *
   * @param source A name for messages and the source's current version.
   */
  follow(source: { readonly name: string; readonly version: () => number }): void {
    this.#source = source;
  }

  /**
   * The compiled program of a kind (compiled on first use, cached per kind and options).
   *
   * @param kind Which graph.
   * @param options Temperature of the score graph.
   * @returns The program.
   */
  program(kind: ProgramKind, options: ScoreOptions = {}): Promise<Program> {
    const chunks = options.chunking?.chunks ?? 0;
    const blocks = options.queryBlocks ?? 1;
    const key = kind === "score" ? `score@${options.temperature ?? 1}/${chunks}/${blocks}` : kind;
    let p = this.#programs.get(key);
    if (!p) {
      const graph = GRAPHS[kind](this.config, options);
      // Under webgpu the cache outputs of prefill and Optimum-style decode stay on the GPU.
      const residentOutputs = kind === "prefill" || kind === "decode_concat"
        ? graph.outputs.map((v) => v.name).filter((n) => n.startsWith("present."))
        : [];
      p = compile(graph, { device: this.device, threads: this.threads, residentOutputs });
      this.#programs.set(key, p);
    }
    return p;
  }

  /** Weight feeds of one run (after the staleness check of {@link follow}). */
  #weightFeeds(): Record<string, Tensor> {
    const want = this.#source?.version();
    if (want !== undefined && want !== this.#version) {
      throw new StaleWeightsError(
        `Policy: weights are version ${this.#version} but ${this.#source!.name} is at version ` +
          `${want}; sync the policy after every update before sampling or scoring`,
      );
    }
    return Object.fromEntries(this.#weights);
  }

  /**
   * Run the prompt through the model: logits of each row's last position and the keys and values
   * of every position (for the decode cache).
   *
   * @param batch Left-padded prompts.
   * @returns Last-position logits and the prompt's cache.
   */
  async prefill(batch: TokenBatch): Promise<PrefillResult> {
    const program = await this.program("prefill");
    const out = await program.run({ ...batchFeeds(batch), ...this.#weightFeeds() });
    return { logits: floats(out.host("logits")), kv: this.#kvOut(out, "none", batch.length) };
  }

  /**
   * One decode step against a host-held slot cache: the cache is read in place, and only the new
   * token's keys and values come back (the caller writes them into a free slot).
   *
   * @param step Tokens, positions, slot mask and cache.
   * @returns Logits and the new keys and values.
   */
  async decode(step: SlotStep): Promise<SlotStepResult> {
    const program = await this.program("decode");
    const { numKvHeads: K, headDim: E } = this.config;
    const feeds: Record<string, Tensor> = {
      input_ids: new HostTensor("int32", [step.batch, 1], step.ids),
      attention_mask: new HostTensor("int32", [step.batch, step.slots], step.slotMask),
      position_ids: new HostTensor("int32", [step.batch, 1], step.positions),
      ...this.#weightFeeds(),
    };
    const dims = [step.batch, K, step.slots, E];
    for (let i = 0; i < this.config.numLayers; i++) {
      feeds[KV_NAMES.slots.input!(i, "key")] = new HostTensor("float32", dims, step.cache.keys[i]);
      feeds[KV_NAMES.slots.input!(i, "value")] = new HostTensor(
        "float32",
        dims,
        step.cache.values[i],
      );
    }
    const out = await program.run(feeds);
    return { logits: floats(out.host("logits")), kv: this.#kvOut(out, "slots", 1) };
  }

  /**
   * Prefill whose keys and values stay where the program leaves them: on the GPU under webgpu
   * (`present.*` as resident outputs), on the host otherwise.
   *
   * @param batch Left-padded prompts.
   * @returns Last-position logits and the present tensors.
   */
  async prefillResident(batch: TokenBatch): Promise<ResidentResult> {
    const program = await this.program("prefill");
    const out = await program.run({ ...batchFeeds(batch), ...this.#weightFeeds() });
    return { logits: floats(out.host("logits")), present: this.#present(out, "none") };
  }

  /**
   * One Optimum-style decode step: `past_key_values.*` in, `present.*` (past ‖ new) out, kept
   * on the GPU under webgpu. The caller disposes `past` once it is replaced.
   *
   * @param step Tokens, positions and mask (past + 1 columns).
   * @param past Present tensors of the previous step.
   * @returns Logits and the new present tensors.
   */
  async decodeResident(step: ResidentStep, past: readonly Tensor[]): Promise<ResidentResult> {
    const program = await this.program("decode_concat");
    const feeds: Record<string, Tensor> = {
      input_ids: new HostTensor("int32", [step.batch, 1], step.ids),
      attention_mask: new HostTensor("int32", [step.batch, step.length], step.mask),
      position_ids: new HostTensor("int32", [step.batch, 1], step.positions),
      ...this.#weightFeeds(),
    };
    for (let i = 0; i < this.config.numLayers; i++) {
      feeds[KV_NAMES.concat.input!(i, "key")] = past[2 * i];
      feeds[KV_NAMES.concat.input!(i, "value")] = past[2 * i + 1];
    }
    const out = await program.run(feeds);
    return { logits: floats(out.host("logits")), present: this.#present(out, "concat") };
  }

  #present(out: { get(name: string): Tensor }, cache: CacheMode): Tensor[] {
    const names = KV_NAMES[cache];
    return Array.from({ length: this.config.numLayers }, (_, i) => [
      out.get(names.output(i, "key")),
      out.get(names.output(i, "value")),
    ]).flat();
  }

  /**
   * Logits of every position (no cache); for tests and analysis.
   *
   * @param batch Token batch.
   * @returns Logits [batch, length, vocab].
   */
  async forward(batch: TokenBatch): Promise<Float32Array> {
    const program = await this.program("forward");
    const out = await program.run({ ...batchFeeds(batch), ...this.#weightFeeds() });
    return floats(out.host("logits"));
  }

  /**
   * Per-token log-probs and entropies of full sequences.
   *
   * @param batch Token batch (either padding side).
   * @param options Temperature the logits are divided by (default 1); head chunking (default
   *   by vocabulary and width); query blocks of the attention (default by heads and length).
   * @returns Scores for positions 0 … length − 2.
   * @throws Error when `options.queryBlocks` would leave a block of this length empty.
   */
  async score(batch: TokenBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    const chunking = options.chunking === undefined
      ? scoreChunking(this.config.vocabSize, batch.length - 1)
      : options.chunking;
    const queryBlocks = options.queryBlocks === undefined
      ? scoreQueryBlocks(this.config, batch.length)
      : options.queryBlocks;
    if (queryBlocks && !queryBlocksFit(batch.length, queryBlocks)) {
      throw new Error(
        `Policy.score(): queryBlocks is ${queryBlocks} at length ${batch.length}; expected a ` +
          `power of two no larger than the length`,
      );
    }
    const program = await this.program("score", { ...options, chunking, queryBlocks });
    // Rows are independent: long sequences of a large model run a few rows at a time, so a
    // run's activations stay bounded (scoreRowsPerRun; with query blocks, its attention scores
    // are a block's, [rows, H, T/n, T] per layer).
    const W = batch.length - 1;
    const step = scoreRowsPerRun(this.config, batch.length);
    const logprobs = new Float32Array(batch.batch * W);
    const entropy = new Float32Array(batch.batch * W);
    for (let r0 = 0; r0 < batch.batch; r0 += step) {
      const rows = batchRows(batch, r0, Math.min(batch.batch, r0 + step));
      const out = await program.run({ ...batchFeeds(rows), ...this.#weightFeeds() });
      logprobs.set(floats(out.host("logprobs")), r0 * W);
      entropy.set(floats(out.host("entropy")), r0 * W);
    }
    return { logprobs, entropy };
  }

  #kvOut(
    out: { host(name: string): HostTensor },
    cache: CacheMode,
    length: number,
  ): KvArrays {
    const keys: Float32Array[] = [];
    const values: Float32Array[] = [];
    for (let i = 0; i < this.config.numLayers; i++) {
      keys.push(floats(out.host(KV_NAMES[cache].output(i, "key"))));
      values.push(floats(out.host(KV_NAMES[cache].output(i, "value"))));
    }
    return { keys, values, length };
  }

  /** Free every compiled program. */
  async release(): Promise<void> {
    const programs = [...this.#programs.values()];
    this.#programs.clear();
    for (const p of programs) await (await p).release();
  }
}

/** Bytes of attention scores one score run may hold per layer (scores, softmax, bias: ×3). */
export const SCORE_ATTENTION_BYTES = 2 ** 30;

/**
 * Rows per score run: all of them unless a row's attention (H · T² float32 values, three
 * times) passes {@link SCORE_ATTENTION_BYTES}; then as many as fit, at least one.
 *
 * @param config The architecture.
 * @param length T, the batch's padded length.
 * @returns Rows per run.
 */
export function scoreRowsPerRun(config: Qwen2Config, length: number): number {
  const perRow = 3 * 4 * config.numHeads * length * length;
  return Math.max(1, Math.floor(SCORE_ATTENTION_BYTES / perRow));
}

/** Bytes of attention one query block of a score run may hold per row and layer (×3 as above). */
export const SCORE_BLOCK_BYTES = 2 ** 26;

/** Most query blocks a score graph is built with by default. */
export const MAX_QUERY_BLOCKS = 64;

/**
 * Query blocks of a score run over rows of T positions: none while a row's whole attention
 * (H · T² float32 values, three times) fits in {@link SCORE_BLOCK_BYTES}; else the smallest
 * power of two n whose blocks of about T/n queries fit (few graphs serve every length), at most
 * {@link MAX_QUERY_BLOCKS} and at most T.
 *
 * @param config The architecture.
 * @param length T, the batch's padded length.
 * @returns The block count, or null for whole attention.
 * @example
 * ```ts
 * import { scoreQueryBlocks } from "./policy.ts";
 * import { qwen2ConfigFromHF, tinyPolicyConfig } from "./transformer.ts";
 * // DeepSeek-R1-Distill-Qwen-1.5B's 12 heads: at 2048 positions 604 MB of scores per row and
 * // layer whole, 16 blocks of 128 queries (38 MB each).
 * const r1 = qwen2ConfigFromHF({
 *   vocab_size: 151936, hidden_size: 1536, intermediate_size: 8960, num_hidden_layers: 28,
 *   num_attention_heads: 12, num_key_value_heads: 2,
 * });
 * scoreQueryBlocks(r1, 2048); // 16
 * scoreQueryBlocks(tinyPolicyConfig(28), 128); // null
 * ```
 */
export function scoreQueryBlocks(config: Qwen2Config, length: number): number | null {
  const perRow = 3 * 4 * config.numHeads * length * length;
  if (perRow <= SCORE_BLOCK_BYTES) return null;
  let n = Math.min(2 ** Math.ceil(Math.log2(perRow / SCORE_BLOCK_BYTES)), MAX_QUERY_BLOCKS);
  while (n > 1 && !queryBlocksFit(length, n)) n /= 2;
  return n > 1 ? n : null;
}

/** Rows [a, b) of a batch (views, no copy). */
function batchRows(batch: TokenBatch, a: number, b: number): TokenBatch {
  if (a === 0 && b === batch.batch) return batch;
  const cut = (x: Int32Array) => x.subarray(a * batch.length, b * batch.length);
  return {
    batch: b - a,
    length: batch.length,
    ids: cut(batch.ids),
    mask: cut(batch.mask),
    positions: cut(batch.positions),
  };
}

function floats(t: HostTensor): Float32Array {
  return t.data as Float32Array;
}

function asFloat32(dir: string, name: string, t: ConstTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  throw new CheckpointError(dir, [`tensor ${name} is ${t.dtype}; expected a floating dtype`]);
}

// ----- training -----------------------------------------------------------------------------------

/** Options of {@link policyTrainStep}: AdamW hyperparameters and the graph name. */
export interface PolicyTrainOptions extends AdamWOptions {
  /** Graph name. */
  name?: string;
  /** Head chunking of the loss graph (see `buildLossGraph`); default by vocabulary. */
  chunking?: HeadChunking | null;
}

/**
 * A whole training step for the policy as one graph: forward, the given loss, backward with
 * respect to every weight, global-norm clipping and AdamW (weight decay on matrices only).
 * Run it with `Trainer` (train_step.ts); `policyFromTrainer` reads the weights back.
 *
 * @param config The architecture.
 * @param loss The loss builder (e.g. `nextTokenLoss`).
 * @param options AdamW hyperparameters.
 * @returns The train step.
 */
export function policyTrainStep(
  config: Qwen2Config,
  loss: LossBuilder,
  options: PolicyTrainOptions = {},
): TrainStep {
  const graph = buildLossGraph(config, loss, { name: options.name, chunking: options.chunking });
  const params = [...parameterShapes(config).keys()].map((name) => ({ name, decay: decays(name) }));
  return buildTrainStep(graph, { ...options, params });
}

/**
 * Start a `Trainer` on a policy's current weights.
 *
 * @param policy The policy (its weights are the initial parameters; they are not modified).
 * @param step From {@link policyTrainStep}.
 * @param options Device and threads (default the policy's), programs to compile now.
 * @returns The trainer.
 */
export function trainerFor(
  policy: Policy,
  step: TrainStep,
  options: TrainerOptions = {},
): Promise<Trainer> {
  const params: Record<string, HostTensor> = {};
  for (const [name, shape] of parameterShapes(policy.config)) {
    params[name] = new HostTensor("float32", shape, policy.weights.get(name)!.slice());
  }
  return Trainer.create(step, params, {
    ...options,
    device: options.device ?? policy.device,
    threads: options.threads ?? policy.threads,
  });
}

/**
 * The trained weights of a trainer, by HF name (downloaded from the device when resident).
 *
 * @param trainer A trainer from {@link trainerFor}.
 * @param config The architecture.
 * @returns Float32 weights, ready for `Policy.create` or `setWeights`.
 */
export async function trainedWeights(
  trainer: Trainer,
  config: Qwen2Config,
): Promise<Map<string, Float32Array>> {
  const state = await trainer.state();
  const out = new Map<string, Float32Array>();
  for (const name of parameterShapes(config).keys()) {
    out.set(name, state.get(name)!.data as Float32Array);
  }
  return out;
}
