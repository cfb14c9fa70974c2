/**
 * Rollout plumbing between the sampler and the trainer: (prompt, completion) token lists become
 * one training batch whose response mask lines up with the score and loss graphs, response-only
 * log-probs and entropies come from the score graph in micro-batches, and {@link PolicyTrainer}
 * keeps the sampling policy on the trainer's weights after every update.
 *
 * **Layout of a rollout batch.** Row i holds prompt i (P tokens) then completion i (C tokens),
 * then padding up to the batch's length T (right padding):
 *
 * ```
 * column      0 … P−1     P … P+C−1      P+C … T−1
 * ids         prompt      completion     padId
 * mask        1           1              0
 * positions   0 … P−1     P … P+C−1      0
 * ```
 *
 * Why this layout: each row's ids and positions are exactly the unpadded sequence the sampler
 * saw (it left-pads prompts, but its positions count real tokens only, so the model computes the
 * same thing); every pad comes after every real token, so under causal attention no real
 * token's output depends on padding even before the mask removes it; and T is the longest
 * prompt + completion, not the longest prompt plus the longest completion as with a layout that
 * aligns all responses at one column (the response mask carries the alignment instead).
 *
 * **The one shift.** The score and loss graphs predict token t+1 at position t, so their
 * per-token arrays are [B, T−1] and column t is about token t+1. Completion token k sits at
 * column P + k and is predicted at t = P − 1 + k, hence
 *
 * ```
 * responseMask[i, t] = 1  ⇔  P_i − 1 ≤ t ≤ P_i + C_i − 2
 * ```
 *
 * i.e. 1 exactly where the predicted token is a completion token (the EOS included, nothing after
 * it). Every helper here (`responseValues`, `responseArray`, `completionLogprobsAsOld`,
 * `scoreResponses`) uses this mapping, so no caller shifts by hand. The mask is the loss graphs'
 * `response_mask` input (float32 [B, T−1]).
 *
 * **Sampler log-probs as `old_logp`.** `Completion.logprobs` are log-softmax(z / T) of the
 * sampled tokens, computed on the host from the decode step's logits; `scoreResponses` computes
 * the same quantity with the score graph over full sequences. On one engine they agree to float
 * rounding (on the CPU, a tiny model at temperatures 1 and 0.7 differs by at most 2e-6; the tests
 * allow 1e-4), so
 * {@link completionLogprobsAsOld} can stand in for recomputing π_old. With top-k or top-p
 * truncation they still agree with each other: both are the log-prob under the full
 * temperature-scaled softmax, before truncation; neither is the log-prob under the truncated,
 * renormalised distribution the token was actually drawn from (which is larger by −log of the
 * kept mass). The SENT paper / verl reference implementation recompute π_old with the trainer,
 * which is the full-softmax value too.
 *
 * @example
 * ```ts
 * import { rolloutBatch, responseValues } from "./rollout.ts";
 * const rollout = rolloutBatch([[1, 5, 6], [1, 7]], [[8, 2], [9, 9, 2]], { padId: 0 });
 * rollout.batch.length; // 5 (both rows have 5 tokens)
 * [...rollout.responseMask]; // [0, 0, 1, 1,  0, 1, 1, 1]
 * responseValues(rollout, Float32Array.from({ length: 8 }, (_, i) => i)).map((v) => [...v]);
 * // [[2, 3], [5, 6, 7]]
 * ```
 *
 * @module
 */

import type {
  ApplyMetrics,
  MicroBatchMetrics,
  StepMetrics,
  Trainer,
  TrainerOptions,
  TrainStep,
} from "./train_step.ts";
import {
  type Policy,
  type ScoreOptions,
  type ScoreResult,
  type TokenBatch,
  trainerFor,
} from "./policy.ts";
import { type Completion, generate, type SampleRequest, type SamplingOptions } from "./sampling.ts";
import { download, HostTensor, type Tensor } from "./session.ts";
import { parameterShapes } from "./transformer.ts";

// ----- the batch ----------------------------------------------------------------------------------

/** Options of {@link rolloutBatch}. */
export interface RolloutOptions {
  /** Id written into padding. */
  padId: number;
  /** Pad to at least this length T (default: the longest prompt + completion, and ≥ 2). */
  length?: number;
  /** When given, a completion is cut right after its first EOS (the sampler never goes past it). */
  eosId?: number;
}

/** (Prompt, completion) rows as one training batch; see the module doc for the layout. */
export interface Rollout {
  /** Right-padded prompt + completion, [B, T]. */
  readonly batch: TokenBatch;
  /** 1 where the token predicted at t (token t+1) is a completion token, [B, T−1]. */
  readonly responseMask: Float32Array;
  /** P_i: prompt tokens of each row, [B]. */
  readonly promptLengths: Int32Array;
  /** C_i: completion tokens of each row (EOS included), [B]. */
  readonly responseLengths: Int32Array;
}

/**
 * Build the training batch of a rollout: prompt and completion concatenated per row, right
 * padding, positions counting real tokens, and the response mask aligned with the [B, T−1]
 * predictions of the score and loss graphs.
 *
 * @param prompts Prompt ids per row (each non-empty).
 * @param completions Completion ids per row (may be empty: the row then has nothing to learn).
 * @param options Pad id, minimum length, optional EOS cut.
 * @returns The batch, the response mask [B, T−1] and the prompt and completion lengths [B].
 * @throws Error naming the row when a prompt is empty or an id is not an integer ≥ 0, or when
 *   the two lists differ in length.
 */
export function rolloutBatch(
  prompts: readonly (readonly number[])[],
  completions: readonly (readonly number[])[],
  options: RolloutOptions,
): Rollout {
  if (prompts.length !== completions.length) {
    throw new Error(
      `rolloutBatch(): ${prompts.length} prompts but ${completions.length} completions; ` +
        `expected one completion per prompt`,
    );
  }
  const B = prompts.length;
  const cut = completions.map((c) => cutAtEos(c, options.eosId));
  const T = Math.max(options.length ?? 0, 2, ...prompts.map((p, i) => p.length + cut[i].length));
  const ids = new Int32Array(B * T).fill(options.padId);
  const mask = new Int32Array(B * T);
  const positions = new Int32Array(B * T);
  const responseMask = new Float32Array(B * (T - 1));
  const promptLengths = Int32Array.from(prompts, (p) => p.length);
  const responseLengths = Int32Array.from(cut, (c) => c.length);
  for (let i = 0; i < B; i++) {
    if (prompts[i].length === 0) throw new Error(`rolloutBatch(): prompt ${i} is empty`);
    const row = [...prompts[i], ...cut[i]];
    row.forEach((id, k) => {
      if (!(Number.isInteger(id) && id >= 0)) {
        throw new Error(
          `rolloutBatch(): row ${i} has token id ${id} at ${k}; expected an integer ≥ 0`,
        );
      }
      ids[i * T + k] = id;
      mask[i * T + k] = 1;
      positions[i * T + k] = k;
    });
    // Completion token k (column P + k) is predicted at t = P − 1 + k.
    const first = i * (T - 1) + promptLengths[i] - 1;
    responseMask.fill(1, first, first + responseLengths[i]);
  }
  return {
    batch: { batch: B, length: T, ids, mask, positions },
    responseMask,
    promptLengths,
    responseLengths,
  };
}

function cutAtEos(completion: readonly number[], eosId: number | undefined): readonly number[] {
  const at = eosId === undefined ? -1 : completion.indexOf(eosId);
  return at < 0 ? completion : completion.slice(0, at + 1);
}

/**
 * The graph feeds of a rollout: `input_ids`, `attention_mask`, `position_ids` (int32 [B, T]) and
 * `response_mask` (float32 [B, T−1]), as the loss graphs declare them. Arrays are shared, not
 * copied.
 *
 * @param rollout From {@link rolloutBatch} or {@link sliceRows}.
 * @returns Tensors by input name.
 */
export function rolloutFeeds(rollout: Rollout): Record<string, HostTensor> {
  const { batch: B, length: T, ids, mask, positions } = rollout.batch;
  return {
    input_ids: new HostTensor("int32", [B, T], ids),
    attention_mask: new HostTensor("int32", [B, T], mask),
    position_ids: new HostTensor("int32", [B, T], positions),
    response_mask: new HostTensor("float32", [B, T - 1], rollout.responseMask),
  };
}

function checkWidth(where: string, rollout: Rollout, values: { length: number }): number {
  const { batch: B, length: T } = rollout.batch;
  if (values.length !== B * (T - 1)) {
    throw new Error(
      `${where}: values have ${values.length} elements; expected B × (T − 1) = ${B} × ${T - 1}`,
    );
  }
  return T - 1;
}

/**
 * Each row's response values out of a per-token array aligned with the predictions: row i gets
 * `values[i, P_i − 1 … P_i + C_i − 2]`, one value per completion token, in order.
 *
 * @param rollout The rollout the values belong to.
 * @param values A [B, T−1] array (log-probs, entropies, …).
 * @returns Per row, a view of C_i values (not a copy).
 */
export function responseValues(rollout: Rollout, values: Float32Array): Float32Array[] {
  const W = checkWidth("responseValues()", rollout, values);
  return Array.from(rollout.promptLengths, (P, i) => {
    const first = i * W + P - 1;
    return values.subarray(first, first + rollout.responseLengths[i]);
  });
}

/**
 * The inverse of {@link responseValues}: per-completion-token values placed into a [B, T−1]
 * array aligned with the predictions, zeros elsewhere.
 *
 * @param rollout The rollout the values belong to.
 * @param rows Per row, one value per completion token (C_i values).
 * @returns The [B, T−1] array.
 * @throws Error naming the row whose value count is not its completion length.
 */
export function responseArray(rollout: Rollout, rows: readonly ArrayLike<number>[]): Float32Array {
  const { batch: B, length: T } = rollout.batch;
  if (rows.length !== B) throw new Error(`responseArray(): ${rows.length} rows; expected ${B}`);
  const out = new Float32Array(B * (T - 1));
  rows.forEach((values, i) => {
    const C = rollout.responseLengths[i];
    if (values.length !== C) {
      throw new Error(
        `responseArray(): row ${i} has ${values.length} values; expected ${C} (its completion length)`,
      );
    }
    out.set(values, i * (T - 1) + rollout.promptLengths[i] - 1);
  });
  return out;
}

/**
 * The sampler's own log-probs as `old_logp`, [B, T−1] aligned with the predictions (zeros
 * outside the response mask). They match the score graph's recomputation on the same weights,
 * temperature and engine to float rounding; see the module doc for top-k/top-p.
 *
 * @param rollout Built from these completions (without an EOS cut that shortens them).
 * @param completions The sampler's completions, one per row.
 * @returns log π_old of every response token, [B, T−1].
 */
export function completionLogprobsAsOld(
  rollout: Rollout,
  completions: readonly Pick<Completion, "logprobs">[],
): Float32Array {
  return responseArray(rollout, completions.map((c) => c.logprobs));
}

// ----- micro-batches ------------------------------------------------------------------------------

/**
 * Row ranges of micro-batches: [start, end) pairs of at most `size` rows covering `0 … batch`.
 *
 * @param batch Rows B.
 * @param size Rows per micro-batch (integer ≥ 1).
 * @returns The ranges, in order.
 */
export function rowRanges(batch: number, size: number): [number, number][] {
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new Error(`rowRanges(): micro-batch size is ${size}; expected an integer ≥ 1`);
  }
  const out: [number, number][] = [];
  for (let s = 0; s < batch; s += size) out.push([s, Math.min(s + size, batch)]);
  return out;
}

/**
 * Rows [start, end) of a rollout, keeping its length T, so any [B, …] array of the rollout is
 * sliced alike with {@link takeRows}. Arrays are views, not copies.
 *
 * @param rollout The whole rollout.
 * @param start First row.
 * @param end One past the last row.
 * @returns The micro-batch as a rollout of end − start rows.
 */
export function sliceRows(rollout: Rollout, start: number, end: number): Rollout {
  const { batch: B, length: T } = rollout.batch;
  if (
    !(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= B)
  ) {
    throw new Error(`sliceRows(): rows [${start}, ${end}); expected 0 ≤ start < end ≤ ${B}`);
  }
  const rows = (a: Int32Array) => takeRows(a, B, start, end);
  const batch: TokenBatch = {
    batch: end - start,
    length: T,
    ids: rows(rollout.batch.ids),
    mask: rows(rollout.batch.mask),
    positions: rows(rollout.batch.positions),
  };
  return {
    batch,
    responseMask: takeRows(rollout.responseMask, B, start, end),
    promptLengths: rows(rollout.promptLengths),
    responseLengths: rows(rollout.responseLengths),
  };
}

/**
 * Rows [start, end) of a row-major array with `batch` rows (any row width: [B], [B, T−1], …).
 *
 * @param values The array.
 * @param batch Its rows B.
 * @param start First row.
 * @param end One past the last row.
 * @returns A view of the rows.
 */
export function takeRows<A extends Float32Array | Int32Array>(
  values: A,
  batch: number,
  start: number,
  end: number,
): A {
  const width = values.length / batch;
  if (!Number.isInteger(width)) {
    throw new Error(`takeRows(): ${values.length} elements do not split into ${batch} rows`);
  }
  return values.subarray(start * width, end * width) as A;
}

// ----- response scores ----------------------------------------------------------------------------

/** Options of {@link scoreResponses}. */
export interface ScoreResponsesOptions {
  /** The rollout's sampling temperature; default 1. 0 (greedy) scores under the plain softmax. */
  temperature?: number;
  /** Rows per run of the score graph (bounds the logits alive at once); default 8. */
  microBatchSize?: number;
}

/** Response-only per-token scores, [B, T−1], zero outside the response mask. */
export interface ResponseScores {
  /** log p(token t+1 | tokens ≤ t) under softmax(z / T). */
  readonly logp: Float32Array;
  /** Entropy of softmax(z / T) at t, in nats. */
  readonly entropy: Float32Array;
}

/** Anything that scores token batches: a `Policy`, or a `PolicyTrainer`'s policy. */
export type Scorer = Pick<Policy, "score">;

/**
 * Log-probs and entropies of the response tokens from the score graph, one micro-batch of rows
 * at a time, so only one micro-batch's logits exist at once. Each micro-batch is cut to its own
 * longest row (only trailing padding is dropped, which no real token sees).
 *
 * @param scorer The policy.
 * @param rollout From {@link rolloutBatch}.
 * @param options Temperature and micro-batch size.
 * @returns logp and entropy [B, T−1], zeros outside the response mask.
 */
export async function scoreResponses(
  scorer: Scorer,
  rollout: Rollout,
  options: ScoreResponsesOptions = {},
): Promise<ResponseScores> {
  const { batch: B, length: T } = rollout.batch;
  const W = T - 1;
  const logp = new Float32Array(B * W);
  const entropy = new Float32Array(B * W);
  const temperature = options.temperature === 0 ? 1 : options.temperature ?? 1;
  for (const [start, end] of rowRanges(B, options.microBatchSize ?? 8)) {
    const part = trimRows(rollout, start, end).batch;
    const w = part.length - 1;
    const out = await scorer.score(part, { temperature });
    for (let r = 0; r < end - start; r++) {
      const at = (start + r) * W;
      for (let t = 0; t < w; t++) {
        const m = rollout.responseMask[at + t];
        logp[at + t] = m * out.logprobs[r * w + t];
        entropy[at + t] = m * out.entropy[r * w + t];
      }
    }
  }
  return { logp, entropy };
}

/**
 * Rows [start, end) of a rollout cut to their own longest row (prompt + completion), so a
 * micro-batch does not pay for its neighbours' length: only trailing padding is dropped, which
 * no real token sees. Every [B, T−1] array of the micro-batch keeps its alignment: cut it with
 * {@link cutColumns} from T − 1 to the result's `length − 1` columns.
 *
 * @param rollout The whole rollout.
 * @param start First row.
 * @param end One past the last row.
 * @param minLength Keep at least this many columns (≥ 2; e.g. a head that runs in n chunks of
 *   positions needs n + 1). The rollout must be at least this long (`rolloutBatch`'s `length`).
 * @returns The micro-batch (copies of the cut arrays; views when nothing is cut).
 * @example
 * ```ts
 * import { rolloutBatch, trimRows } from "./rollout.ts";
 * const rollout = rolloutBatch([[1, 5], [1, 6, 7, 8]], [[2], [9, 9, 2]], { padId: 0 });
 * trimRows(rollout, 0, 1).batch.length; // 3 (row 0 alone has 3 tokens, not 7)
 * ```
 */
export function trimRows(rollout: Rollout, start: number, end: number, minLength = 2): Rollout {
  const part = sliceRows(rollout, start, end);
  const T = rollout.batch.length;
  let L = Math.max(2, minLength);
  for (let i = 0; i < end - start; i++) {
    L = Math.max(L, part.promptLengths[i] + part.responseLengths[i]);
  }
  if (L > T) {
    throw new Error(`trimRows(): minLength ${minLength} exceeds the rollout's length ${T}`);
  }
  if (L === T) return part;
  return {
    ...part,
    batch: {
      batch: end - start,
      length: L,
      ids: cutColumns(part.batch.ids, T, L),
      mask: cutColumns(part.batch.mask, T, L),
      positions: cutColumns(part.batch.positions, T, L),
    },
    responseMask: cutColumns(part.responseMask, T - 1, L - 1),
  };
}

/**
 * The first `to` columns of a row-major array with `from` columns (a copy; the array itself
 * when nothing is cut).
 *
 * @param values The array, [rows, from].
 * @param from Its columns.
 * @param to Columns kept (≤ from).
 * @returns [rows, to].
 */
export function cutColumns<A extends Int32Array | Float32Array>(
  values: A,
  from: number,
  to: number,
): A {
  if (from === to) return values;
  const rows = values.length / from;
  const out = new (values.constructor as { new (n: number): A })(rows * to);
  for (let r = 0; r < rows; r++) out.set(values.subarray(r * from, r * from + to), r * to);
  return out;
}

// ----- the policy that follows the trainer --------------------------------------------------------

/**
 * A `Policy` and the `Trainer` of its weights, kept in step: after every update the policy's
 * weights are replaced by the trainer's parameters — on cpu and cuda the trainer's host state
 * arrays themselves (a pointer swap, no copy), on webgpu a download of the parameters only.
 *
 * The policy follows the trainer (`Policy.follow`): any run of it — through this object, or
 * `generate(policyTrainer.policy, …)` directly — throws `StaleWeightsError` when the trainer has
 * applied updates the policy has not taken (e.g. after calling `trainer.step` directly), so
 * sampling or scoring can never silently use stale weights.
 *
 * @example
 * ```ts
 * import { initWeights, Policy, policyTrainStep } from "./policy.ts";
 * import { PolicyTrainer } from "./rollout.ts";
 * import { nextTokenLoss, tinyPolicyConfig } from "./transformer.ts";
 * const config = tinyPolicyConfig(32);
 * const policy = Policy.create(config, initWeights(config, { seed: 1 }));
 * const pt = await PolicyTrainer.create(policy, policyTrainStep(config, nextTokenLoss));
 * // await pt.step(feeds, { lr: 1e-3 }); then pt.generate(…) samples from the new weights
 * await pt.release();
 * ```
 */
export class PolicyTrainer {
  /** The policy, always on the trainer's current weights. */
  readonly policy: Policy;
  /** The trainer (running `step` on it directly leaves the policy stale until synced). */
  readonly trainer: Trainer;

  private constructor(policy: Policy, trainer: Trainer) {
    this.policy = policy;
    this.trainer = trainer;
  }

  /**
   * Start a trainer on a policy's current weights and bind the two.
   *
   * @param policy The policy (from now on on the trainer's arrays).
   * @param step From `policyTrainStep`.
   * @param options Device and threads of the trainer (default the policy's).
   * @returns The bound pair.
   */
  static async create(
    policy: Policy,
    step: TrainStep,
    options: TrainerOptions = {},
  ): Promise<PolicyTrainer> {
    return await PolicyTrainer.bind(policy, await trainerFor(policy, step, options));
  }

  /**
   * Bind an existing trainer (e.g. one whose state was restored) to a policy; the policy takes
   * the trainer's current parameters at once.
   *
   * @param policy The policy.
   * @param trainer A trainer whose parameters are the policy's weights by HF name.
   * @returns The bound pair.
   */
  static async bind(policy: Policy, trainer: Trainer): Promise<PolicyTrainer> {
    const pt = new PolicyTrainer(policy, trainer);
    await pt.#sync();
    policy.follow({ name: "its trainer", version: () => trainer.updates });
    return pt;
  }

  /** The trainer's update count, which the policy's weights match. */
  get version(): number {
    return this.trainer.updates;
  }

  /**
   * One training step, then the policy takes the new weights.
   *
   * @param data One tensor per data input of the step (e.g. {@link rolloutFeeds} plus the loss's).
   * @param options Learning rate.
   * @returns The step's metrics.
   */
  async step(
    data: Readonly<Record<string, Tensor>>,
    options: { lr: number },
  ): Promise<StepMetrics> {
    const metrics = await this.trainer.step(data, options);
    await this.#sync();
    return metrics;
  }

  /**
   * Add one micro-batch's gradient to the trainer's accumulators (the weights do not change, so
   * the policy stays in step).
   *
   * @param data One tensor per data input of the step.
   * @returns The micro-batch's loss and metrics.
   */
  accumulate(data: Readonly<Record<string, Tensor>>): Promise<MicroBatchMetrics> {
    return this.trainer.accumulate(data);
  }

  /**
   * One optimizer step over the accumulated gradients, then the policy takes the new weights.
   *
   * @param options Learning rate.
   * @returns Gradient norm, whether the update was applied, micro-batches summed.
   */
  async apply(options: { lr: number }): Promise<ApplyMetrics> {
    const metrics = await this.trainer.apply(options);
    await this.#sync();
    return metrics;
  }

  /**
   * `generate` with the policy (see sampling.ts).
   *
   * @param requests Prompts with their ids.
   * @param options Sampling options.
   * @returns One completion per request.
   */
  generate(requests: readonly SampleRequest[], options: SamplingOptions): Promise<Completion[]> {
    return generate(this.policy, requests, options);
  }

  /**
   * `Policy.score` with the current weights.
   *
   * @param batch Token batch.
   * @param options Temperature.
   * @returns Per-token scores [B, T−1].
   */
  score(batch: TokenBatch, options: ScoreOptions = {}): Promise<ScoreResult> {
    return this.policy.score(batch, options);
  }

  /**
   * {@link scoreResponses} with the current weights.
   *
   * @param rollout From {@link rolloutBatch}.
   * @param options Temperature and micro-batch size.
   * @returns Response-only logp and entropy [B, T−1].
   */
  scoreResponses(rollout: Rollout, options: ScoreResponsesOptions = {}): Promise<ResponseScores> {
    return scoreResponses(this.policy, rollout, options);
  }

  /** Point the policy at the trainer's parameters (call after every applied update). */
  async #sync(): Promise<void> {
    const state = this.trainer.stateTensors;
    const weights = new Map<string, Float32Array>();
    for (const name of parameterShapes(this.policy.config).keys()) {
      const t = state.get(name);
      if (!t) throw new Error(`PolicyTrainer: the trainer has no parameter ${name}`);
      weights.set(name, (await download(t)).data as Float32Array); // host tensors: no copy
    }
    this.policy.setWeights(weights, { version: this.trainer.updates });
  }

  /** Free the trainer and the policy's programs (the policy's weights stay readable, e.g. to save). */
  async release(): Promise<void> {
    await this.trainer.release();
    await this.policy.release();
  }
}
