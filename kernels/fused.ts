/**
 * Per-token fused graphs on logits: token entropy, log-prob of the chosen tokens, and the k3
 * estimator of the KL to the reference policy. Each is a builder function that records ONNX ops
 * into a `GraphBuilder` (so it composes into larger graphs and differentiates with `grad`), next
 * to a plain TypeScript reference used by the tests.
 *
 * Dimension letters: `B` batch (sequences), `T` positions, `V` vocabulary. Any number of leading
 * axes is allowed; the vocabulary is always the last axis.
 *
 * Every graph here stays on the WebGPU EP: log-softmax is written as `z − ReduceLogSumExp(z)`
 * (LogSoftmax itself falls back to CPU), and the only int64 tensors are GatherElements indices
 * (kernels/README.md §2).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { chosenLogProb, tokenEntropy } from "./fused.ts";
 * const b = new GraphBuilder("score");
 * const logits = b.input("logits", "float32", ["B", "T", 32]);  // [B,T,V]
 * const tokens = b.input("tokens", "int64", ["B", "T"]);        // [B,T]
 * b.output(chosenLogProb(b, logits, tokens), "logp");            // [B,T]
 * b.output(tokenEntropy(b, logits), "entropy");                  // [B,T]
 * const graph = b.build();
 * ```
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Value } from "./ir.ts";

/** Options shared by the logits graphs. */
export interface LogitsOptions {
  /**
   * Sampling temperature T: logits are divided by T before the softmax, as in the rollout (the
   * SENT reference trainer divides them before both log-prob and entropy); default 1 (no
   * division emitted).
   */
  temperature?: number;
}

function scaled(b: GraphBuilder, logits: Value, options: LogitsOptions): Value {
  const t = options.temperature ?? 1;
  if (!(t > 0)) throw new Error(`temperature must be > 0, got ${t}`);
  return t === 1 ? logits : b.div(logits, b.scalar(t, logits.dtype));
}

/**
 * Token entropy of the next-token distribution, in nats, from the current policy's full distribution (not only the sampled token):
 * `H = logsumexp(z) − Σ_j softmax(z)_j · z_j` with `z = logits / T`; equal to `−Σ p log p`
 * but stable for large logits. Gradient flows through both terms (the w/ En bonus needs it).
 *
 * @param b Builder to record into.
 * @param logits `[..., V]` logits.
 * @param options Temperature.
 * @returns `[...]` entropy per position.
 */
export function tokenEntropy(b: GraphBuilder, logits: Value, options: LogitsOptions = {}): Value {
  const z = scaled(b, logits, options); //                        [...,V]
  const lse = b.reduceLogSumExp(z, [-1], false); //               [...]
  const p = b.softmax(z, -1); //                                  [...,V]
  const expected = b.reduceSum(b.mul(p, z), [-1], false); //      [...]  E_p[z]
  return b.sub(lse, expected);
}

/**
 * Log-probability of chosen tokens: `ℓ = z[token] − logsumexp(z)` with `z = logits / T`, as
 * GatherElements on the logits minus ReduceLogSumExp (the full log-softmax is never
 * materialised).
 *
 * Token ids may be int64 (ONNX's index type) or int32, shaped `[...]` or `[..., 1]`. Under the
 * WebGPU EP an int64 `[...]` input needs an Unsqueeze that only the CPU EP implements for int64
 * (checked by the placement test), so feed int64 ids as `[..., 1]` or use int32 there.
 *
 * @param b Builder to record into.
 * @param logits `[..., V]` logits.
 * @param tokens `[...]` or `[..., 1]` chosen token ids.
 * @param options Temperature.
 * @returns `[...]` log-probabilities.
 */
export function chosenLogProb(
  b: GraphBuilder,
  logits: Value,
  tokens: Value,
  options: LogitsOptions = {},
): Value {
  if (tokens.dtype !== "int64" && tokens.dtype !== "int32") {
    throw new Error(
      `chosenLogProb(): tokens ${tokens.name} must be int64 or int32, got ${tokens.dtype}`,
    );
  }
  const z = scaled(b, logits, options); //                        [...,V]
  const keep = tokens.shape.length === logits.shape.length;
  const idx = keep ? tokens : b.unsqueeze(tokens, [-1]); //       [...,1]
  const picked = b.gatherElements(z, idx, -1); //                 [...,1]
  const lse = b.reduceLogSumExp(z, [-1], true); //                [...,1]
  return b.squeeze(b.sub(picked, lse), [-1]); //                  [...]
}

/**
 * {@link chosenLogProb} and {@link tokenEntropy} of the same logits in one pass: one
 * ReduceLogSumExp serves both, `ℓ = z[token] − lse(z)` and `H = lse(z) − Σ softmax(z)·z`.
 * The chosen logit is read with GatherElements and summed over its size-1 axis (not squeezed),
 * which also holds for an empty position axis (ORT's GatherElements returns a misshapen empty
 * tensor there); the chunked head (`_chunk_head.ts`) relies on that.
 *
 * @param b Builder to record into.
 * @param logits `[..., V]` logits.
 * @param tokens `[...]` chosen token ids, int32 (or int64 on the CPU EP).
 * @param options Temperature.
 * @returns `[...]` log-probabilities and entropies.
 */
export function logProbAndEntropy(
  b: GraphBuilder,
  logits: Value,
  tokens: Value,
  options: LogitsOptions = {},
): { logp: Value; entropy: Value } {
  const z = scaled(b, logits, options); //                                  [...,V]
  const idx = b.unsqueeze(tokens, [-1]); //                                 [...,1]
  const picked = b.reduceSum(b.gatherElements(z, idx, -1), [-1], false); // [...]
  const lse = b.reduceLogSumExp(z, [-1], false); //                         [...]
  const expected = b.reduceSum(b.mul(b.softmax(z, -1), z), [-1], false); //  [...]  E_p[z]
  return { logp: b.sub(picked, lse), entropy: b.sub(lse, expected) };
}

/** Clamp bounds of the k3 estimator, as in verl's `kl_penalty("low_var_kl")`. */
export const K3_CLAMP = { logRatio: 20, kl: 10 } as const;

/**
 * Low-variance KL estimator k3 to the reference policy, per token (Schulman's k3, with the
 * clamps of verl's `low_var_kl`):
 * ```
 * d  = clamp(ℓ_ref − ℓ, −20, 20)
 * k3 = clamp(exp(d) − d − 1, −10, 10)
 * ```
 * k3 ≥ 0, so only the upper clamp binds. The reference log-prob is wrapped in stop-gradient:
 * gradient flows through the current policy's `ℓ` only.
 *
 * @param b Builder to record into.
 * @param logp `[...]` log-prob of the current policy.
 * @param refLogp `[...]` log-prob of the reference policy.
 * @returns `[...]` k3 per token.
 */
export function klK3(b: GraphBuilder, logp: Value, refLogp: Value): Value {
  const dt = logp.dtype;
  const d = b.clip(
    b.sub(b.stopGradient(refLogp), logp),
    b.scalar(-K3_CLAMP.logRatio, dt),
    b.scalar(K3_CLAMP.logRatio, dt),
  );
  const k3 = b.sub(b.sub(b.exp(d), d), b.scalar(1, dt));
  return b.clip(k3, b.scalar(-K3_CLAMP.kl, dt), b.scalar(K3_CLAMP.kl, dt));
}

// ----- plain TypeScript references (float64), row-major, vocabulary last ----------------------

function rows(logits: ArrayLike<number>, vocab: number, temperature: number): Float64Array[] {
  const n = logits.length / vocab;
  return Array.from({ length: n }, (_, r) => {
    const z = new Float64Array(vocab);
    for (let j = 0; j < vocab; j++) z[j] = logits[r * vocab + j] / temperature;
    return z;
  });
}

function logSumExp(z: Float64Array): number {
  let m = -Infinity;
  for (const x of z) m = Math.max(m, x);
  let s = 0;
  for (const x of z) s += Math.exp(x - m);
  return m + Math.log(s);
}

/**
 * Reference for `tokenEntropy`: `−Σ p log p` per row, with p = softmax(logits / T).
 *
 * @param logits Row-major `[n, vocab]` logits.
 * @param vocab Row length.
 * @param temperature T; default 1.
 * @returns Entropy per row.
 */
export function tokenEntropyReference(
  logits: ArrayLike<number>,
  vocab: number,
  temperature = 1,
): Float64Array {
  return Float64Array.from(rows(logits, vocab, temperature), (z) => {
    const lse = logSumExp(z);
    let h = 0;
    for (const x of z) h -= Math.exp(x - lse) * (x - lse);
    return h;
  });
}

/**
 * Reference for `chosenLogProb`: `log softmax(logits / T)[token]` per row.
 *
 * @param logits Row-major `[n, vocab]` logits.
 * @param tokens One token id per row.
 * @param options Row length and temperature.
 * @returns Log-prob per row.
 */
export function chosenLogProbReference(
  logits: ArrayLike<number>,
  tokens: ArrayLike<number | bigint>,
  options: { vocab: number; temperature?: number },
): Float64Array {
  return Float64Array.from(
    rows(logits, options.vocab, options.temperature ?? 1),
    (z, r) => z[Number(tokens[r])] - logSumExp(z),
  );
}

/**
 * Reference for `klK3`, elementwise.
 *
 * @param logp Current-policy log-probs.
 * @param refLogp Reference-policy log-probs.
 * @returns k3 per element.
 */
export function klK3Reference(
  logp: ArrayLike<number>,
  refLogp: ArrayLike<number>,
): Float64Array {
  const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
  return Float64Array.from({ length: logp.length }, (_, i) => {
    const d = clamp(refLogp[i] - logp[i], -K3_CLAMP.logRatio, K3_CLAMP.logRatio);
    return clamp(Math.exp(d) - d - 1, -K3_CLAMP.kl, K3_CLAMP.kl);
  });
}
