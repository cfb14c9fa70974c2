/**
 * Batched generation with a KV cache: prefill each batch of prompts once, then decode one token
 * per step, sampling on the host with temperature, top-k and top-p until EOS or the token limit.
 *
 * **Reproducible under any batching.** Each request carries a problem id and a sample index; its
 * random numbers come from a counter-based stream keyed by (seed, problem, sample) (see
 * `counter_rng.ts`): token t uses number t of that stream. Left padding is masked out of attention
 * and position ids count only real tokens, so a row's logits do not depend on its neighbours
 * either. Completions therefore do not change when the batch size, the order of requests or the
 * sharding changes (the tests check batch sizes 1, 7 and 64).
 *
 * **Where the cache lives.**
 * - `slots` (default on cpu and cuda): the cache is a host array per layer, [rows, K, C, E], fed
 *   to each decode step in place; a step returns only the new token's keys and values, which are
 *   written into the next free slot. Nothing proportional to the cache is copied per step. When
 *   rows finish or the slots run out, the cache is rebuilt with the live rows only and room for
 *   {@link SLOT_CHUNK} more tokens.
 * - `resident` (default on webgpu): Optimum-style `past_key_values.*` → `present.*` graphs whose
 *   present outputs stay on the GPU and are fed back as the next step's past (kernels/README.md
 *   §6); only logits come back to the host. Finished rows keep decoding padding until the batch ends.
 *
 * @example
 * ```ts
 * import { generate } from "./sampling.ts";
 * import { initWeights, Policy } from "./policy.ts";
 * import { tinyPolicyConfig } from "./transformer.ts";
 * const config = tinyPolicyConfig(32);
 * const policy = Policy.create(config, initWeights(config, { seed: 0 }));
 * const out = await generate(policy, [{ prompt: [1, 5, 9], problem: "p0", sample: 0 }], {
 *   seed: 1, maxNewTokens: 8, eosId: 2, padId: 0, temperature: 1, topP: 0.95,
 * });
 * out[0].tokens; // up to 8 ids
 * ```
 *
 * @module
 */

import { counterUniform, type StreamKey, streamKey } from "./counter_rng.ts";
import { type KvArrays, padBatch, type Policy } from "./policy.ts";
import type { Tensor } from "./session.ts";

/** One sequence to generate. */
export interface SampleRequest {
  /** Prompt token ids (non-empty). */
  readonly prompt: readonly number[];
  /** Problem id: part of the random stream's key. */
  readonly problem: number | string;
  /** Sample index within the problem: part of the random stream's key. */
  readonly sample: number;
  /** Token budget of this request (EOS included); default the options' `maxNewTokens`. */
  readonly maxNewTokens?: number;
}

/** Options of {@link generate}. */
export interface SamplingOptions {
  /** Run seed: part of every random stream's key. */
  seed: number | string;
  /**
   * Most tokens generated per request (EOS included), unless the request sets its own. Either
   * budget is clamped to the context: a prompt of P tokens gets at most `maxPositions − P + 1`
   * (the last token is never fed back, so it needs no position), and such a completion ends with
   * finish `length`.
   */
  maxNewTokens: number;
  /** Padding id of the batch (never attended to). */
  padId: number;
  /** End-of-sequence id: generation of a row stops after it. */
  eosId?: number;
  /**
   * More stop ids (a tokenizer's EOS ids, e.g. `<|im_end|>` and `<|endoftext|>`): generation of
   * a row stops after any of them, as after `eosId`; the completion ends with finish `eos`.
   */
  eosIds?: readonly number[];
  /** Softmax temperature; 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Nucleus sampling: keep the most likely tokens whose mass reaches topP. Default 1 (off). */
  topP?: number;
  /** Keep only the k most likely tokens; 0 (default) is off. Applied before top-p. */
  topK?: number;
  /** Requests per batch; default 64. */
  batchSize?: number;
  /** Where the KV cache lives; default `slots` on cpu/cuda, `resident` on webgpu. */
  cache?: "slots" | "resident";
  /** Called after each batch with the number of requests done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** Why a completion ended. */
export type FinishReason = "eos" | "length";

/** A generated continuation. */
export interface Completion {
  /** Generated ids, the EOS id included when it was produced. */
  readonly tokens: number[];
  /**
   * Log-probability of each generated token under the temperature-scaled distribution, before
   * top-k/top-p truncation (temperature 0: under the plain softmax).
   */
  readonly logprobs: number[];
  readonly finish: FinishReason;
}

/** Slots added to the cache each time it fills up (and rows are compacted). */
export const SLOT_CHUNK = 32;

/**
 * Generate a continuation for every request, in batches.
 *
 * @param policy The model.
 * @param requests Prompts with their (problem, sample) ids and optional token budgets.
 * @param options Seed, default budget, sampling parameters, batch size.
 * @returns One completion per request, in request order.
 * @throws Error naming the request when a prompt is empty or alone longer than the model's
 *   positions, or its budget is not an integer ≥ 1.
 */
export async function generate(
  policy: Policy,
  requests: readonly SampleRequest[],
  options: SamplingOptions,
): Promise<Completion[]> {
  checkOptions(options);
  const limits = requests.map((r, i) => tokenLimit(r, i, options, policy.config.maxPositions));
  const size = options.batchSize ?? 64;
  const mode = options.cache ?? (policy.device === "webgpu" ? "resident" : "slots");
  if (mode === "slots" && policy.device === "webgpu") {
    throw new Error(
      "generate(): the slots cache is read from host memory each step; on webgpu use " +
        'cache: "resident" (the default there), which keeps it on the GPU',
    );
  }
  const out: Completion[] = [];
  for (let start = 0; start < requests.length; start += size) {
    const rows = requests.slice(start, start + size).map((r, k) =>
      new Row(r, limits[start + k], options)
    );
    await (mode === "slots" ? runSlots : runResident)(policy, rows, options);
    out.push(...rows.map((r) => r.completion()));
    options.onProgress?.(out.length, requests.length);
  }
  return out;
}

function checkOptions(o: SamplingOptions): void {
  const bad = (key: string, value: unknown, expected: string) =>
    new Error(`generate(): ${key} is ${value}; expected ${expected}`);
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) {
    throw bad("maxNewTokens", o.maxNewTokens, "an integer ≥ 1");
  }
  if (o.temperature !== undefined && !(o.temperature >= 0)) {
    throw bad("temperature", o.temperature, "a number ≥ 0");
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) {
    throw bad("topP", o.topP, "a number in (0, 1]");
  }
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) {
    throw bad("topK", o.topK, "an integer ≥ 0");
  }
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize >= 1)) {
    throw bad("batchSize", o.batchSize, "an integer ≥ 1");
  }
}

/**
 * A request's token limit: its budget (or the default), clamped to the context. Prompt tokens
 * take positions 0 … P−1 and generated token k is fed at P + k, except the last one, so n tokens
 * need P + n − 1 ≤ maxPositions.
 */
function tokenLimit(
  r: SampleRequest,
  i: number,
  options: SamplingOptions,
  maxPositions: number,
): number {
  const P = r.prompt.length;
  if (P === 0) throw new Error(`generate(): request ${i} has an empty prompt`);
  if (P > maxPositions) {
    throw new Error(
      `generate(): request ${i} has a prompt of ${P} tokens, more than max_position_embeddings ` +
        `${maxPositions}`,
    );
  }
  const budget = r.maxNewTokens ?? options.maxNewTokens;
  if (!Number.isInteger(budget) || budget < 1) {
    throw new Error(`generate(): request ${i} has maxNewTokens ${budget}; expected an integer ≥ 1`);
  }
  return Math.min(budget, maxPositions - P + 1);
}

// ----- one row's state ----------------------------------------------------------------------------

class Row {
  readonly request: SampleRequest;
  /** Most tokens this row may generate (EOS included). */
  readonly limit: number;
  readonly tokens: number[] = [];
  readonly logprobs: number[] = [];
  finish: FinishReason | undefined;
  readonly #key: StreamKey;
  readonly #options: SamplingOptions;

  constructor(request: SampleRequest, limit: number, options: SamplingOptions) {
    this.request = request;
    this.limit = limit;
    this.#key = streamKey(options.seed, request.problem, request.sample);
    this.#options = options;
  }

  get done(): boolean {
    return this.finish !== undefined;
  }

  /** Position id of the next token fed to the model (the last sampled one). */
  get position(): number {
    return this.request.prompt.length + this.tokens.length - 1;
  }

  /** Sample the next token from this row's logits. */
  take(logits: Float32Array): void {
    const u = counterUniform(this.#key, this.tokens.length);
    const { token, logprob } = sampleToken(logits, u, this.#options);
    this.tokens.push(token);
    this.logprobs.push(logprob);
    if (token === this.#options.eosId || this.#options.eosIds?.includes(token)) this.finish = "eos";
    else if (this.tokens.length >= this.limit) this.finish = "length";
  }

  completion(): Completion {
    return { tokens: this.tokens, logprobs: this.logprobs, finish: this.finish ?? "length" };
  }
}

// ----- token choice -------------------------------------------------------------------------------

/**
 * Choose a token from one row of logits with a given uniform number.
 *
 * z = logits / T. Top-k keeps the k largest z (ties: lower id first); top-p then keeps the
 * shortest prefix of the remaining tokens, sorted by probability, whose renormalised mass reaches
 * p. The token is found by inverse CDF with `u` over the kept tokens (in id order when no
 * truncation applies, else in sorted order). T = 0 takes the argmax (lowest id among ties).
 *
 * @param logits Logits of one row [V].
 * @param u A uniform number in [0, 1).
 * @param options Temperature, top-p and top-k.
 * @returns The token and its log-probability under softmax(z) (before truncation).
 */
export function sampleToken(
  logits: Float32Array,
  u: number,
  options: Pick<SamplingOptions, "temperature" | "topP" | "topK">,
): { token: number; logprob: number } {
  const V = logits.length;
  const temperature = options.temperature ?? 1;
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < V; i++) {
    if (logits[i] > max) {
      max = logits[i];
      argmax = i;
    }
  }
  const scale = temperature === 0 ? 1 : 1 / temperature;
  const p = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += p[i] = Math.exp((logits[i] - max) * scale);
  const logZ = Math.log(total);
  const logprobOf = (t: number) => (logits[t] - max) * scale - logZ;
  if (temperature === 0) return { token: argmax, logprob: logprobOf(argmax) };

  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  // Inverse CDF over the first `count` candidates (ids in that order; null: 0, 1, 2, …).
  const target = (ids: Uint32Array | null, count: number, mass: number) => {
    const goal = u * mass;
    let cum = 0;
    for (let k = 0; k < count; k++) {
      const id = ids ? ids[k] : k;
      cum += p[id];
      if (goal < cum) return id;
    }
    return ids ? ids[count - 1] : count - 1; // rounding left u·mass at the very top
  };
  const truncK = topK > 0 && topK < V;
  if (!truncK && topP >= 1) {
    const token = target(null, V, total);
    return { token, logprob: logprobOf(token) };
  }
  const sorted = Uint32Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
  let count = truncK ? topK : V;
  let mass = 0;
  for (let k = 0; k < count; k++) mass += p[sorted[k]];
  if (topP < 1) {
    let cum = 0;
    for (let k = 0; k < count; k++) {
      cum += p[sorted[k]];
      if (cum >= topP * mass) {
        count = k + 1;
        mass = cum;
        break;
      }
    }
  }
  const token = target(sorted, count, mass);
  return { token, logprob: logprobOf(token) };
}

// ----- slot cache (host arrays) -------------------------------------------------------------------

/** A host KV cache of `rows` sequences × `slots` positions, plus which slots are filled. */
class SlotCache {
  readonly rows: number;
  readonly slots: number;
  readonly kv: KvArrays;
  readonly mask: Int32Array;
  readonly #K: number;
  readonly #E: number;

  constructor(layers: number, K: number, E: number, rows: number, slots: number) {
    this.rows = rows;
    this.slots = slots;
    this.#K = K;
    this.#E = E;
    const n = rows * K * slots * E;
    this.kv = {
      keys: Array.from({ length: layers }, () => new Float32Array(n)),
      values: Array.from({ length: layers }, () => new Float32Array(n)),
      length: slots,
    };
    this.mask = new Int32Array(rows * slots);
  }

  /**
   * Copy `count` positions per row from `src` ([srcRows, K, srcLen, E] per layer) into slots
   * starting at `at`; `rows[r]` is the source row of cache row r.
   */
  write(src: KvArrays, rows: readonly number[], at: number, from = 0, count = src.length): void {
    const E = this.#E;
    const width = count * E;
    for (let l = 0; l < src.keys.length; l++) {
      for (
        const [dst, srcArr] of [[this.kv.keys[l], src.keys[l]], [
          this.kv.values[l],
          src.values[l],
        ]]
      ) {
        for (let r = 0; r < rows.length; r++) {
          for (let h = 0; h < this.#K; h++) {
            const s = ((rows[r] * this.#K + h) * src.length + from) * E;
            const d = ((r * this.#K + h) * this.slots + at) * E;
            dst.set(srcArr.subarray(s, s + width), d);
          }
        }
      }
    }
  }

  /** A new cache holding `rows` of this one (in that order), with `slots` slots. */
  rebuild(rows: readonly number[], slots: number): SlotCache {
    const next = new SlotCache(this.kv.keys.length, this.#K, this.#E, rows.length, slots);
    const keep = Math.min(slots, this.slots);
    next.write(this.kv, rows, 0, 0, keep);
    rows.forEach((r, i) =>
      next.mask.set(this.mask.subarray(r * this.slots, r * this.slots + keep), i * slots)
    );
    return next;
  }
}

/** Generate for one batch with the host slot cache. */
async function runSlots(policy: Policy, rows: Row[], options: SamplingOptions): Promise<void> {
  const { numLayers, numKvHeads: K, headDim: E, vocabSize: V } = policy.config;
  const batch = padBatch(rows.map((r) => r.request.prompt), { padId: options.padId });
  const P = batch.length;
  const prefill = await policy.prefill(batch);
  rows.forEach((row, r) => row.take(prefill.logits.subarray(r * V, (r + 1) * V)));

  // Cache row i holds rows[held[i]]; finished rows stay (decoded, ignored) until a rebuild.
  let held = rows.flatMap((row, r) => (row.done ? [] : [r]));
  const limit = Math.max(...rows.map((r) => r.limit));
  const room = (t: number) => Math.min(SLOT_CHUNK, limit - 1 - t);
  let cache = new SlotCache(numLayers, K, E, held.length, P + room(0));
  cache.write(prefill.kv, held, 0);
  held.forEach((r, i) => cache.mask.set(batch.mask.subarray(r * P, (r + 1) * P), i * cache.slots));

  for (let t = 0; held.some((r) => !rows[r].done); t++) {
    const slot = P + t; // where this step's token goes
    const live = held.flatMap((r, i) => (rows[r].done ? [] : [i]));
    if (slot >= cache.slots || live.length <= 0.75 * held.length) {
      cache = cache.rebuild(live, slot >= cache.slots ? cache.slots + room(t) : cache.slots);
      held = live.map((i) => held[i]);
    }
    const out = await policy.decode({
      batch: held.length,
      slots: cache.slots,
      ids: Int32Array.from(held, (r) => rows[r].tokens.at(-1)!),
      positions: Int32Array.from(held, (r) => rows[r].position),
      slotMask: cache.mask,
      cache: cache.kv,
    });
    cache.write(out.kv, held.map((_, i) => i), slot);
    held.forEach((r, i) => {
      cache.mask[i * cache.slots + slot] = 1;
      if (!rows[r].done) rows[r].take(out.logits.subarray(i * V, (i + 1) * V));
    });
  }
}

// ----- resident cache (Optimum past → present) ------------------------------------------------------

/** Generate for one batch with the cache kept where the program leaves it (GPU on webgpu). */
async function runResident(policy: Policy, rows: Row[], options: SamplingOptions): Promise<void> {
  const batch = padBatch(rows.map((r) => r.request.prompt), { padId: options.padId });
  const B = rows.length;
  const V = policy.config.vocabSize;
  const first = await policy.prefillResident(batch);
  rows.forEach((row, r) => row.take(first.logits.subarray(r * V, (r + 1) * V)));
  let past: Tensor[] = first.present;
  let mask = batch.mask;
  let length = batch.length;
  try {
    while (rows.some((r) => !r.done)) {
      const nextMask = new Int32Array(B * (length + 1));
      for (let r = 0; r < B; r++) {
        nextMask.set(mask.subarray(r * length, (r + 1) * length), r * (length + 1));
        nextMask[r * (length + 1) + length] = 1;
      }
      mask = nextMask;
      length += 1;
      const ids = Int32Array.from(rows, (r) => r.done ? options.padId : r.tokens.at(-1)!);
      const positions = Int32Array.from(rows, (r) => r.position);
      const out = await policy.decodeResident({ batch: B, ids, positions, mask, length }, past);
      disposeAll(past);
      past = out.present;
      rows.forEach((row, r) => {
        if (!row.done) row.take(out.logits.subarray(r * V, (r + 1) * V));
      });
    }
  } finally {
    disposeAll(past);
  }
}

function disposeAll(ts: readonly Tensor[]): void {
  for (const t of ts) if (t.location !== "cpu") t.dispose();
}
