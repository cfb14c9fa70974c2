/**
 * The output head over chunks of positions: per-token log-prob of the next token and entropy of
 * the next-token distribution, without ever holding the `[B, W, V]` logits of a whole batch.
 * At a real vocabulary (V = 151,936 for Qwen2) those logits dwarf everything else a scoring or
 * training run holds: 4 × 2047 positions are 5 GB in float32, and a plain backward keeps the
 * logits and their softmax alive until the head's gradient, twice that.
 *
 * Dimension letters: `B` rows, `W` predicted positions (T − 1), `D` hidden size, `V` vocabulary,
 * `c` positions per chunk, `N` = B·c rows of one chunk.
 *
 * **Forward (scoring and the loss).** Chunk k of n takes positions [⌊k·W/n⌋, ⌊(k+1)·W/n⌋),
 * bounds the graph computes from the batch's shape (one graph serves every W ≥ n; ORT's kernels
 * do not all accept empty chunks, Softmax on WebGPU among them):
 * ```
 * z_k = h_k Wᵀ / T_temp        [B, c, V]
 * ℓ_k = z_k[target] − lse(z_k)  H_k = lse(z_k) − Σ softmax(z_k)·z_k     (fused.ts)
 * ```
 * and only ℓ and H ([B, W]) are kept. Each chunk's ℓ and H leave it as one [B, c, 2] tensor, so
 * ORT's depth-first node order finishes a chunk (and frees its logits) before it starts the next.
 *
 * **Backward without the logits.** The loss L depends on the head only through ℓ and H. The
 * head's values are computed without gradient; then `dL/dℓ = a` and `dL/dH = e` ([B, W]) come
 * from differentiating L with respect to those two values alone, and each chunk is recomputed
 * to apply the head's Jacobian (s = z / T_temp, p = softmax(s), E = Σ p·s):
 * ```
 * dℓ/ds_j = 1[j = target] − p_j        dH/ds_j = −p_j (s_j − E)
 * ds = a·onehot − p ⊙ (a + e·(s − E))   dz = ds / T_temp
 * dh_k = dz W    [N, D]                dW += dzᵀ h_k    [V, D]
 * ```
 * The graph's loss is then `sg(L) + (S − sg(S))` with the surrogate
 * `S = Σ_k Σ sg(dh_k) ⊙ h_k + Σ sg(dW) ⊙ W`: its value is exactly L (S − S is 0), and its
 * gradient with respect to every weight is that of L, the head's part through S and the rest
 * of the model through h by ordinary autodiff (`sg` = stop-gradient).
 *
 * Two details keep the memory bound real under ONNX Runtime: the recomputation multiplies
 * with Gemm on the 2-D chunk where the forward uses MatMul, so ORT's common-subexpression
 * elimination cannot merge the two (which would keep every chunk's forward logits alive until
 * the backward); and each chunk's recomputation reads, through zero-weight terms, its own `a`
 * (so it cannot run early, while the loss is still being computed: ORT's node order would
 * otherwise start every chunk's recomputation first and keep its [N, V] values waiting) and one
 * element of the previous chunk's `dh` and of the running `dW` (so chunk k's `dz` has fed both of
 * its products, and its `dW` part is summed, before chunk k + 1 starts). Measured on the CPU EP, forward
 * and backward of a loss on 4 × 1024 positions of a 65,536-token vocabulary (width 256): peak
 * RSS 0.66 GB in 32 chunks, 2.7 GB without the first of these two terms, 6.9 GB on whole logits.
 *
 * Every op stays on the WebGPU EP: targets are sliced as float32 (no integer Slice there) and
 * cast back, ScatterElements-add puts `a` on the target column.
 *
 * @module
 */

import { gradInto } from "./autodiff.ts";
import type { GraphBuilder } from "./builder.ts";
import { logProbAndEntropy } from "./fused.ts";
import type { Value } from "./ir.ts";

/**
 * How the head is chunked: into `chunks` runs of consecutive positions, chunk k holding
 * positions [⌊k·W/n⌋, ⌊(k+1)·W/n⌋) of the batch's W (bounds computed in the graph from its
 * shape, so one graph serves every width W ≥ n; a chunk is never empty there).
 */
export interface HeadChunking {
  readonly chunks: number;
}

/** Vocabularies from this size on are chunked by default (the built-in task's has 28 ids). */
export const CHUNK_MIN_VOCAB = 16384;

/** Logit elements per row and chunk: c = ⌊2²² / V⌋ positions (16 MB of float32 per row). */
export const CHUNK_ROW_ELEMENTS = 2 ** 22;

/** Most chunks a loss graph is built with by default (it then needs W ≥ this many positions). */
export const MAX_LOSS_CHUNKS = 32;

/**
 * The chunking of a score run over W positions: none below {@link CHUNK_MIN_VOCAB}; else enough
 * chunks for at most ⌊2²² / V⌋ positions each (27 for Qwen2's 151,936, 16 MB of float32 logits
 * per row), rounded up to a power of two so that few graphs serve every width, and at most W.
 *
 * @param vocab V.
 * @param width W, the predicted positions of the batch.
 * @returns The chunking, or null for an unchunked head.
 * @example
 * ```ts
 * import { scoreChunking } from "./_chunk_head.ts";
 * scoreChunking(151936, 2047); // { chunks: 128 }: 15–16 positions each
 * scoreChunking(28, 127); // null
 * ```
 */
export function scoreChunking(vocab: number, width: number): HeadChunking | null {
  if (vocab < CHUNK_MIN_VOCAB || width < 2) return null;
  const positions = Math.max(1, Math.floor(CHUNK_ROW_ELEMENTS / vocab));
  const needed = Math.ceil(width / positions);
  const pow2 = 2 ** Math.ceil(Math.log2(needed));
  return { chunks: Math.max(1, Math.min(pow2, 2 ** Math.floor(Math.log2(width)))) };
}

/**
 * The chunking of a loss graph, which serves every micro-batch: none below
 * {@link CHUNK_MIN_VOCAB}; else as {@link scoreChunking} for the longest width the model takes
 * (its context, at most 4096), capped at {@link MAX_LOSS_CHUNKS} chunks. Such a graph needs
 * W ≥ the chunk count.
 *
 * @param vocab V.
 * @param maxPositions The model's context.
 * @returns The chunking, or null.
 */
export function lossChunking(vocab: number, maxPositions: number): HeadChunking | null {
  const plan = scoreChunking(vocab, Math.min(maxPositions, 4096) - 1);
  return plan && { chunks: Math.min(plan.chunks, MAX_LOSS_CHUNKS) };
}

/** The head's inputs: hidden states, output weight, next-token targets. */
export interface HeadInputs {
  /** Final normalised hidden states at positions 0 … T−2: [B, W, D]. */
  readonly hidden: Value;
  /** Output weight [V, D] (`lm_head.weight`, or the tied embedding). */
  readonly weight: Value;
  /** Tokens 1 … T−1: [B, W], int32 or int64. */
  readonly targets: Value;
}

/** Options of the chunked head. */
export interface ChunkedHeadOptions {
  /** The chunking. */
  chunking: HeadChunking;
  /** Logits are divided by this (sampling temperature); default 1. */
  temperature?: number;
}

/** Per-token values of the chunked head, and how to give a loss on them its gradient. */
export interface ChunkedHead {
  /** log p(target) [B, W], without gradient. */
  readonly logp: Value;
  /** Entropy of the next-token distribution [B, W], without gradient. */
  readonly entropy: Value;
  /**
   * The loss to output: the value of `loss` (a scalar that depends on the head only through
   * `logp` and `entropy`), with the gradient described in the module doc.
   */
  finish(loss: Value): Value;
}

/**
 * Slicers of chunk k along axis 1: positions [⌊k·W/n⌋, ⌊(k+1)·W/n⌋), from W = shape[1] of
 * `like` (int64 shape arithmetic: a few scalars, on the CPU under WebGPU, where Slice reads its
 * bounds anyway).
 */
function chunkSlicers(b: GraphBuilder, like: Value, n: number): ((x: Value) => Value)[] {
  const W = b.gather(b.shape(like), b.ints([1])); //                        [1] int64
  const at = (k: number) => k === 0 ? b.ints([0]) : b.div(b.mul(W, b.ints([k])), b.ints([n]));
  const axes = b.ints([1]);
  return Array.from({ length: n }, (_, k) => {
    const start = at(k);
    const end = k === n - 1 ? W : at(k + 1);
    return (x: Value) => b.op1("Slice", [x, start, end, axes]);
  });
}

/**
 * Log-probs and entropies of the targets, chunk by chunk (forward only; see the module doc).
 *
 * @param b The graph being built.
 * @param head Hidden states, output weight, targets.
 * @param options Chunking and temperature.
 * @returns The values and the `finish` that gives a loss on them its gradient.
 */
export function chunkedHead(
  b: GraphBuilder,
  head: HeadInputs,
  options: ChunkedHeadOptions,
): ChunkedHead {
  const plan = options.chunking;
  if (!(Number.isInteger(plan.chunks) && plan.chunks > 0)) {
    throw new Error(`chunkedHead(): chunk count is ${plan.chunks}; expected an integer ≥ 1`);
  }
  const t = { temperature: options.temperature };
  const targetsF = b.cast(head.targets, "float32"); //                        [B, W]
  const hidden = b.stopGradient(head.hidden);
  const weight = b.stopGradient(head.weight);
  const slicers = chunkSlicers(b, targetsF, plan.chunks);
  const parts: Value[] = [];
  for (const cut of slicers) {
    const h = cut(hidden); //                                                 [B, c, D]
    const z = b.matmul(h, b.transpose(weight, [1, 0])); //                   [B, c, V]
    const tk = b.cast(cut(targetsF), "int32"); //                            [B, c]
    const { logp, entropy } = logProbAndEntropy(b, z, tk, t); //            2 × [B, c]
    parts.push(b.concat([b.unsqueeze(logp, [2]), b.unsqueeze(entropy, [2])], 2)); // [B, c, 2]
  }
  const all = parts.length === 1 ? parts[0] : b.concat(parts, 1); //        [B, W, 2]
  const logp = b.squeeze(b.slice(all, [0], [1], [2]), [2]); //              [B, W]
  const entropy = b.squeeze(b.slice(all, [1], [2], [2]), [2]); //           [B, W]
  return {
    logp,
    entropy,
    finish: (loss) =>
      withHeadGradient(b, loss, { ...head, targetsF, logp, entropy, slicers }, options),
  };
}

/** `sg(L) + (S − sg(S))`: L's value, with the head's gradient through the surrogate S. */
function withHeadGradient(
  b: GraphBuilder,
  loss: Value,
  v: HeadInputs & {
    targetsF: Value;
    logp: Value;
    entropy: Value;
    slicers: ((x: Value) => Value)[];
  },
  options: ChunkedHeadOptions,
): Value {
  const temp = options.temperature ?? 1;
  const D = v.hidden.shape.at(-1) as number;
  const [a, e] = gradInto(b, loss, [v.logp, v.entropy]).map((g) => b.stopGradient(g)); // [B, W]
  const hidden = b.stopGradient(v.hidden);
  const weight = b.stopGradient(v.weight);
  const first = (x: Value) => b.slice(x, [0, 0], [1, 1], [0, 1]); //            [1, 1]
  let dW: Value | undefined; //                                                   [V, D]
  let order: Value | undefined; //                                                [1, 1], = 0
  const dhs: Value[] = []; //                                                     [B, c, D] each
  for (const cut of v.slicers) {
    const h3 = cut(hidden); //                                                    [B, c, D]
    const h = b.reshape(h3, [-1, D]); //                                          [N, D]
    const rows = (x: Value) => b.reshape(cut(x), [-1, 1]); //                    [N, 1]
    // Zero-weight read of the previous chunk's results: orders the chunks (see the module doc).
    const ak = order ? b.add(rows(a), order) : rows(a); //                       [N, 1]
    const ek = rows(e);
    const target = b.cast(rows(v.targetsF), "int64"); //                          [N, 1]
    // The recomputation reads ak (zero-weight), so it cannot start before ak exists: run early,
    // its [N, V] values would wait for the loss and every earlier chunk.
    const hk = b.add(h, b.mul(first(ak), b.scalar(0))); //                        [N, D] = h
    let sc = b.gemm(hk, weight, null, { transB: true }); //                       [N, V]  s = z
    if (temp !== 1) sc = b.div(sc, b.scalar(temp));
    const p = b.softmax(sc, 1); //                                                [N, V]
    const mean = b.reduceSum(b.mul(p, sc), [1]); //                               [N, 1]  E
    const coef = b.add(ak, b.mul(ek, b.sub(sc, mean))); //                        [N, V]
    let ds = b.scatterElements(b.neg(b.mul(p, coef)), target, ak, 1, "add"); //  [N, V]
    if (temp !== 1) ds = b.div(ds, b.scalar(temp)); //                            dz
    const dh = b.matmul(ds, weight); //                                           [N, D]
    const dWk = b.gemm(ds, hk, null, { transA: true }); //                       [V, D]
    dW = dW ? b.add(dW, dWk) : dWk;
    dhs.push(b.reshape(dh, b.shape(h3))); //                                      [B, c, D]
    order = b.mul(b.add(first(dh), first(dW)), b.scalar(0));
  }
  const dhAll = b.stopGradient(dhs.length === 1 ? dhs[0] : b.concat(dhs, 1)); // [B, W, D]
  const S = b.add(
    b.reduceSum(b.mul(dhAll, v.hidden), [0, 1, 2], false),
    b.reduceSum(b.mul(b.stopGradient(dW!), v.weight), [0, 1], false),
  ); //                                                                           []
  return b.add(b.stopGradient(loss), b.sub(S, b.stopGradient(S)));
}
