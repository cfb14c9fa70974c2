/**
 * The warm-up (SFT) of the tiny policy on the built-in task's traces: batches, noise, schedule,
 * the loop with logging and scratch checkpoints. `stages/base.ts` wires it to the pipeline.
 *
 * One step, in order:
 * 1. rows: step s takes positions s·B … s·B + B − 1 of an endless sequence of epochs, each a
 *    seeded permutation of the training rows (so a step's rows depend only on (seed, s));
 * 2. noise: each use of a trace draws from its own stream keyed by (seed, step, batch row) and,
 *    with probability `noise`, gets one step's result shifted (data/tiny_aime/noise.ts);
 * 3. tokens: `<bos>` + prompt (the `tiny-aime` template) + trace + `<eos>`, right-padded to the
 *    batch's longest row; the loss mask covers the trace and `<eos>` only;
 * 4. update: next-token cross-entropy averaged over masked tokens, AdamW with global-norm
 *    clipping, learning rate on one cosine schedule from the peak to 0:
 *    lr(s) = lr · ½ · (1 + cos(π · s / S)) for s = 0 … S − 1.
 *
 * A checkpoint holds the trainer's exact state (parameters, AdamW moments, update count) and the
 * loop's counters; as every step's rows and noise depend only on (seed, step), a resumed
 * warm-up ends with the same weights, bit for bit, as one that was never interrupted (on the
 * same device and thread count).
 *
 * @module
 */

import { makePrng } from "../data/_prng.ts";
import { PROMPT_TEMPLATES } from "../data/prompts.ts";
import type { ProblemRow } from "../data/rows.ts";
import { corruptTrace } from "../data/tiny_aime/noise.ts";
import type { CharTokenizer } from "../data/tokenizer_char.ts";
import {
  padBatch,
  Policy,
  policyTrainStep,
  trainedWeights,
  trainerFor,
} from "../kernels/policy.ts";
import { Trainer, type TrainStep } from "../kernels/train_step.ts";
import { TRAINER_STATE_FILE } from "../kernels/trainer_state.ts";
import { type Device, HostTensor } from "../kernels/session.ts";
import { nextTokenLoss, type Qwen2Config, qwen2ConfigFromHF } from "../kernels/transformer.ts";

/** The `base.model.*` keys. */
export interface ModelKeys {
  width: number;
  layers: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  context: number;
}

/** The `base.warmup.*` keys. */
export interface WarmupKeys {
  steps: number;
  batchSize: number;
  seqLen: number;
  lr: number;
  weightDecay: number;
  seed: number;
  noise: number;
  noiseMax: number;
  logEvery: number;
  checkpointEvery: number;
}

/** Which `base.model` key each HF `config.json` key comes from (for error messages). */
const HF_TO_KEY: Readonly<Record<string, string>> = {
  hidden_size: "base.model.width",
  num_hidden_layers: "base.model.layers",
  num_attention_heads: "base.model.heads",
  num_key_value_heads: "base.model.kvHeads",
  intermediate_size: "base.model.ffn",
  max_position_embeddings: "base.model.context",
};

/**
 * The Qwen2 architecture of the tiny policy, from the `base.model.*` keys: tied embeddings (a
 * 28-id vocabulary needs no separate output head), RoPE θ 10⁴, RMSNorm ε 10⁻⁶.
 *
 * @param model The `base.model` keys.
 * @param vocabSize The tokenizer's vocabulary size.
 * @returns The config.
 * @throws Error naming the `base.model` key at fault (e.g. width not divisible by heads).
 */
export function policyConfigFromKeys(model: ModelKeys, vocabSize: number): Qwen2Config {
  try {
    return qwen2ConfigFromHF({
      vocab_size: vocabSize,
      hidden_size: model.width,
      intermediate_size: model.ffn,
      num_hidden_layers: model.layers,
      num_attention_heads: model.heads,
      num_key_value_heads: model.kvHeads,
      max_position_embeddings: model.context,
      tie_word_embeddings: true,
    });
  } catch (e) {
    const message = (e as Error).message.replace(
      /\b(hidden_size|num_hidden_layers|num_attention_heads|num_key_value_heads|intermediate_size|max_position_embeddings)\b/g,
      (k) => HF_TO_KEY[k],
    );
    throw new Error(message.replace(/^config\.json: /, ""));
  }
}

/**
 * Learning rate of step `s` (0-based) on one cosine schedule from `peak` to 0 over `steps`.
 *
 * @param peak Peak learning rate (step 0).
 * @param s Step index.
 * @param steps Total steps.
 * @returns lr(s) = peak · ½ · (1 + cos(π s / steps)).
 */
export function cosineLr(peak: number, s: number, steps: number): number {
  return peak * 0.5 * (1 + Math.cos(Math.PI * s / Math.max(steps, 1)));
}

/** Seeded permutations of the training rows, one per epoch, built on demand. */
export class BatchOrder {
  readonly #n: number;
  readonly #seed: number;
  readonly #epochs = new Map<number, Uint32Array>();

  /**
   * @param n Training rows.
   * @param seed The warm-up seed.
   */
  constructor(n: number, seed: number) {
    if (n < 1) throw new Error("the warm-up needs at least one training row");
    this.#n = n;
    this.#seed = seed;
  }

  /**
   * Row indices of step `s`: positions s·B … s·B + B − 1 of the epochs laid end to end.
   *
   * @param s Step index.
   * @param batchSize Rows per step.
   * @returns Row indices.
   */
  rows(s: number, batchSize: number): number[] {
    const out: number[] = [];
    for (let p = s * batchSize; p < (s + 1) * batchSize; p++) {
      const epoch = Math.floor(p / this.#n);
      out.push(this.#epoch(epoch)[p % this.#n]);
    }
    return out;
  }

  #epoch(e: number): Uint32Array {
    let perm = this.#epochs.get(e);
    if (perm === undefined) {
      perm = Uint32Array.from({ length: this.#n }, (_, i) => i);
      const rng = makePrng(`warmup-order:${this.#seed}:${e}`);
      for (let i = this.#n - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      this.#epochs.set(e, perm);
      this.#epochs.delete(e - 2); // steps only move forward
    }
    return perm;
  }
}

/** One training sequence: token ids and where the learnt part starts. */
export interface SftSequence {
  /** `<bos>` + prompt + trace + `<eos>`. */
  ids: number[];
  /** Tokens of `<bos>` + prompt (not learnt). */
  promptTokens: number;
  /** Whether this use of the trace was corrupted. */
  noisy: boolean;
}

/**
 * The sequence of one use of a row in the warm-up.
 *
 * @param row A training row with a trace.
 * @param tokenizer The character tokenizer.
 * @param warmup Seed, noise and noiseMax.
 * @param s Step index.
 * @param r Row of the batch.
 * @returns Ids and prompt length.
 * @throws Error naming the row when it has no trace or is longer than base.warmup.seqLen.
 */
export function sftSequence(
  row: ProblemRow,
  tokenizer: CharTokenizer,
  warmup: Pick<WarmupKeys, "seed" | "noise" | "noiseMax" | "seqLen">,
  s: number,
  r: number,
): SftSequence {
  if (row.solution === null) {
    throw new Error(`training row ${row.id} has no solution trace; the warm-up needs one per row`);
  }
  const rng = makePrng(`warmup-noise:${warmup.seed}:${s}:${r}`);
  const { solution, step } = corruptTrace(row.solution, rng, warmup);
  const prompt = tokenizer.encode(PROMPT_TEMPLATES["tiny-aime"].render(row.problem), {
    bos: true,
  });
  const ids = [...prompt, ...tokenizer.encode(solution, { eos: true })];
  if (ids.length > warmup.seqLen) {
    throw new Error(
      `training row ${row.id} is ${ids.length} tokens long (<bos> + prompt + trace + <eos>); ` +
        `base.warmup.seqLen is ${warmup.seqLen}`,
    );
  }
  return { ids, promptTokens: prompt.length, noisy: step !== null };
}

/** Feeds of the SFT train step for a batch, and its count of learnt tokens. */
export interface SftBatch {
  /** `input_ids`, `attention_mask`, `position_ids` int32 and `loss_mask` float32, [B, T]. */
  feeds: Record<string, HostTensor>;
  /** Real tokens (mask 1) in the batch. */
  tokens: number;
  /** Tokens under the loss mask. */
  learnt: number;
}

/**
 * Right-pad sequences into one train-step batch; the loss mask is 1 on every token after the
 * prompt (trace and `<eos>`).
 *
 * @param sequences The batch.
 * @param padId Padding id.
 * @returns Feeds and token counts.
 */
export function sftBatch(sequences: readonly SftSequence[], padId: number): SftBatch {
  const batch = padBatch(sequences.map((q) => q.ids), { padId, side: "right" });
  const dims = [batch.batch, batch.length];
  const lossMask = new Float32Array(batch.batch * batch.length);
  let learnt = 0;
  sequences.forEach((q, r) => {
    for (let k = q.promptTokens; k < q.ids.length; k++) lossMask[r * batch.length + k] = 1;
    learnt += q.ids.length - q.promptTokens;
  });
  return {
    feeds: {
      input_ids: new HostTensor("int32", dims, batch.ids),
      attention_mask: new HostTensor("int32", dims, batch.mask),
      position_ids: new HostTensor("int32", dims, batch.positions),
      loss_mask: new HostTensor("float32", dims, lossMask),
    },
    tokens: sequences.reduce((n, q) => n + q.ids.length, 0),
    learnt,
  };
}

/** One row of the loss curve. */
export interface WarmupLogRow {
  [key: string]: number;
  /** Steps done. */
  step: number;
  /** Mean loss over the steps since the previous row. */
  loss: number;
  /** Learning rate of the last of those steps. */
  lr: number;
  /** Real tokens per second over those steps (forward and backward). */
  tokensPerSecond: number;
  /** Global gradient norm of the last step (before clipping). */
  gradNorm: number;
  /** Share of trace uses that were corrupted over those steps. */
  noisy: number;
}

/** Where the loop reports and where it checkpoints. */
export interface WarmupHooks {
  /** A row of the loss curve, every `logEvery` steps and after the last step. */
  log?(row: WarmupLogRow): void;
  /** One step done. */
  tick?(): void;
  /** Directory for checkpoints (absent: none). */
  scratchDir?: string;
  /** Rows logged so far (saved in checkpoints so a resumed run keeps them). */
  loggedRows?(): number;
  /** A checkpoint was loaded: keep this many rows logged before it. */
  resumed?(rows: number, step: number): void;
}

/** What the warm-up returns. */
export interface WarmupResult {
  /** Final weights by HF name. */
  weights: Map<string, Float32Array>;
  /** Mean loss of the last `logEvery` steps (NaN for 0 steps). */
  finalLoss: number;
  /** Seconds spent in steps (across resumed attempts). */
  seconds: number;
  /** Real tokens trained on. */
  tokens: number;
  /** Step the run resumed from (0 for a fresh start). */
  resumedFrom: number;
}

/** Scratch layout of a warm-up checkpoint. */
const CKPT = "warmup_ckpt";
const CKPT_PROGRESS = "progress.json";

/** Counters carried across a checkpoint. */
interface Progress {
  step: number;
  loggedRows: number;
  seconds: number;
  tokens: number;
  /** Loss curve accumulators since the last logged row. */
  window: { losses: number[]; tokens: number; seconds: number; noisy: number; uses: number };
}

/**
 * Run the warm-up: `warmup.steps` AdamW steps on the rows' traces from `initial` weights.
 * Checkpoints every `checkpointEvery` steps into `hooks.scratchDir` and resumes from the last
 * one found there.
 *
 * @param config The architecture.
 * @param initial Initial weights (from `initWeights`).
 * @param rows Training rows with traces.
 * @param tokenizer The character tokenizer.
 * @param warmup The `base.warmup` keys.
 * @param engine Device and threads.
 * @param hooks Logging, progress and checkpoints.
 * @returns The trained weights and totals.
 */
export async function runWarmup(
  config: Qwen2Config,
  initial: ReadonlyMap<string, Float32Array>,
  rows: readonly ProblemRow[],
  tokenizer: CharTokenizer,
  warmup: WarmupKeys,
  engine: { device?: Device; threads?: number },
  hooks: WarmupHooks = {},
): Promise<WarmupResult> {
  const order = new BatchOrder(rows.length, warmup.seed);
  if (warmup.steps === 0) {
    return { weights: new Map(initial), finalLoss: NaN, seconds: 0, tokens: 0, resumedFrom: 0 };
  }
  const step = policyTrainStep(config, nextTokenLoss, { weightDecay: warmup.weightDecay });
  const saved = hooks.scratchDir ? await findCheckpoint(hooks.scratchDir) : null;
  const trainer = saved
    ? await Trainer.restore(step, saved.statePath, engine)
    : await freshTrainer(config, initial, step, engine);
  const progress: Progress = saved?.progress ?? {
    step: 0,
    loggedRows: 0,
    seconds: 0,
    tokens: 0,
    window: { losses: [], tokens: 0, seconds: 0, noisy: 0, uses: 0 },
  };
  if (saved) hooks.resumed?.(saved.progress.loggedRows, saved.progress.step);
  const resumedFrom = progress.step;
  let last = { lr: 0, gradNorm: 0 };
  let finalLoss = NaN;
  try {
    for (let s = progress.step; s < warmup.steps; s++) {
      const t0 = performance.now();
      const sequences = order.rows(s, warmup.batchSize).map((i, r) =>
        sftSequence(rows[i], tokenizer, warmup, s, r)
      );
      const batch = sftBatch(sequences, tokenizer.padId);
      const lr = cosineLr(warmup.lr, s, warmup.steps);
      const metrics = await trainer.step(batch.feeds, { lr });
      const seconds = (performance.now() - t0) / 1000;
      const w = progress.window;
      w.losses.push(metrics.loss);
      w.tokens += batch.tokens;
      w.seconds += seconds;
      w.uses += sequences.length;
      w.noisy += sequences.filter((q) => q.noisy).length;
      progress.seconds += seconds;
      progress.tokens += batch.tokens;
      progress.step = s + 1;
      last = { lr, gradNorm: metrics.gradNorm };
      if (progress.step % warmup.logEvery === 0 || progress.step === warmup.steps) {
        finalLoss = w.losses.reduce((a, b) => a + b, 0) / w.losses.length;
        hooks.log?.({
          step: progress.step,
          loss: finalLoss,
          lr: last.lr,
          tokensPerSecond: w.tokens / Math.max(w.seconds, 1e-9),
          gradNorm: last.gradNorm,
          noisy: w.noisy / w.uses,
        });
        progress.window = { losses: [], tokens: 0, seconds: 0, noisy: 0, uses: 0 };
      }
      const due = progress.step % warmup.checkpointEvery === 0 && progress.step < warmup.steps;
      if (hooks.scratchDir && due) {
        progress.loggedRows = hooks.loggedRows?.() ?? 0;
        await saveCheckpoint(hooks.scratchDir, trainer, progress);
      }
      hooks.tick?.();
    }
    return {
      weights: await trainedWeights(trainer, config),
      finalLoss,
      seconds: progress.seconds,
      tokens: progress.tokens,
      resumedFrom,
    };
  } finally {
    await trainer.release();
  }
}

/**
 * Save the trainer's exact state (parameters, AdamW moments, update count) and the loop's
 * counters atomically: write a fresh folder, then swap it in.
 */
async function saveCheckpoint(
  scratchDir: string,
  trainer: Trainer,
  progress: Progress,
): Promise<void> {
  const dir = `${scratchDir}/${CKPT}`;
  const fresh = `${dir}.tmp`;
  await Deno.remove(fresh, { recursive: true }).catch(() => {});
  await Deno.mkdir(fresh, { recursive: true });
  await trainer.saveState(`${fresh}/${TRAINER_STATE_FILE}`);
  await Deno.writeTextFile(`${fresh}/${CKPT_PROGRESS}`, JSON.stringify(progress) + "\n");
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.rename(fresh, dir);
}

/** The last checkpoint in the scratch folder (state file and counters), or null. */
async function findCheckpoint(
  scratchDir: string,
): Promise<{ statePath: string; progress: Progress } | null> {
  const dir = `${scratchDir}/${CKPT}`;
  try {
    const progress = JSON.parse(await Deno.readTextFile(`${dir}/${CKPT_PROGRESS}`));
    return { statePath: `${dir}/${TRAINER_STATE_FILE}`, progress };
  } catch {
    return null;
  }
}

/** A trainer starting from the given weights, with zero moments. */
async function freshTrainer(
  config: Qwen2Config,
  initial: ReadonlyMap<string, Float32Array>,
  step: TrainStep,
  engine: { device?: Device; threads?: number },
): Promise<Trainer> {
  const policy = Policy.create(config, new Map(initial), engine);
  try {
    return await trainerFor(policy, step, engine);
  } finally {
    await policy.release();
  }
}
