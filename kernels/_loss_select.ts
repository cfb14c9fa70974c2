/**
 * Token selection inside the graph, from values that carry no gradient: how many tokens (`k`
 * computed from the count of valid tokens at run time), which ones (a TopK over the flattened
 * batch whose ineligible entries are pushed to the far end), covariances, the entropy
 * percentile of the 80/20 mask, and the reference code's row-gathered values (SENT
 * `v2-literal`).
 *
 * Conventions:
 * - Every selection is a float32 0/1 mask [B, W] (W = positions the graph sees), ANDed with
 *   the eligibility mask, so padding and prompt positions are never selected, even when `k`
 *   exceeds the number of eligible tokens or no token is valid.
 * - Ties: among equal keys the lower flat index (row-major over [B, W]) wins, for the largest
 *   and for the smallest alike (ONNX TopK's tie rule, kept by ORT's CPU kernel).
 * - Counts: `k = max(floor(f · n), 1)` in float64, the arithmetic of Python's
 *   `max(int(n * f), 1)` in the reference implementation (float32 would give 1 instead of 2 at
 *   f = 0.0002, n = 10000). So these nodes run on the CPU execution provider.
 *
 * Dimension letters: `B` rows, `W` positions, `F = B·W` flat positions, `k` selected.
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Value } from "./ir.ts";

/** Σ of a [B, W] mask: a float32 scalar. */
export function countOf(b: GraphBuilder, mask: Value): Value {
  return b.reduceSum(mask, [0, 1], false);
}

/** A selection size: int64 [1] for TopK, and the same number as a float64 scalar. */
export interface Count {
  readonly k: Value;
  readonly k64: Value;
}

/**
 * `k = max(floor(fraction · n), 1)`, computed in float64.
 *
 * @param b Builder to record into.
 * @param n Scalar count (float32 or float64).
 * @param fraction The fraction f.
 * @returns k as int64 [1] and as a float64 scalar.
 */
export function fractionCount(b: GraphBuilder, n: Value, fraction: number): Count {
  const scaled = b.mul(b.cast(n, "float64"), b.scalar(fraction, "float64"));
  const k64 = b.max(b.op1("Floor", [scaled]), b.scalar(1, "float64"));
  return { k64, k: b.reshape(b.cast(k64, "int64"), [1]) };
}

/**
 * The k eligible tokens with the largest (or smallest) key, as a mask.
 *
 * @param b Builder to record into.
 * @param key [B, W] float32 or float64 keys (no gradient).
 * @param eligible [B, W] float32 0/1: which tokens may be chosen.
 * @param k int64 [1], 1 ≤ k ≤ B·W.
 * @param largest Pick the largest keys (else the smallest).
 * @returns [B, W] float32 0/1 mask of at most k eligible tokens.
 */
export function topkMask(
  b: GraphBuilder,
  key: Value,
  eligible: Value,
  k: Value,
  largest: boolean,
): Value {
  const far = b.scalar(largest ? -Infinity : Infinity, key.dtype);
  const flat = b.reshape(b.where(b.greater(eligible, b.scalar(0)), key, far), [-1]); // [F]
  const [, idx] = b.op("TopK", [flat, k], { axis: 0, largest: largest ? 1 : 0, sorted: 1 }); // [k]
  const picked = b.scatterElements(
    b.constantOfShape(b.shape(flat), "float32", 0), //                                 [F]
    idx,
    b.constantOfShape(b.shape(idx), "float32", 1), //                                  [k]
    0,
  );
  return b.mul(b.reshape(picked, b.shape(key)), eligible); //                          [B, W]
}

/**
 * Mean of `x` over the tokens of `mask` (0 when the mask is empty).
 *
 * @param b Builder to record into.
 * @param x [B, W] or [B, 1] values.
 * @param mask [B, W] float32 0/1.
 * @returns A float32 scalar.
 */
export function maskedMean(b: GraphBuilder, x: Value, mask: Value): Value {
  const m = b.cast(mask, x.dtype);
  const n = b.max(countOf(b, m), b.scalar(1, x.dtype));
  return b.div(b.reduceSum(b.mul(x, m), [0, 1], false), n);
}

/**
 * Per-token covariance term `(a − ā)(ℓ − ℓ̄)`, the means taken over the tokens of `mask`
 * (Cui et al.'s covariance between advantage and log-prob). Computed in float64: covariances
 * that are equal in exact arithmetic (two tokens always have equal terms) stay equal, so the
 * tie rule decides between them rather than float32 rounding.
 *
 * @param b Builder to record into.
 * @param a [B, 1] or [B, W] float32 advantages.
 * @param l [B, W] float32 log-probs (no gradient).
 * @param mask [B, W] float32 0/1: the tokens the means are taken over.
 * @returns [B, W] float64 covariance terms (meaningful on the mask's tokens).
 */
export function covariance(b: GraphBuilder, a: Value, l: Value, mask: Value): Value {
  const [a64, l64] = [b.cast(a, "float64"), b.cast(l, "float64")];
  return b.mul(b.sub(a64, maskedMean(b, a64, mask)), b.sub(l64, maskedMean(b, l64, mask)));
}

/**
 * The 80/20 mask: valid tokens with `key ≥ τ`, τ the `q`-quantile of the valid keys with linear
 * interpolation (numpy's and torch's default): with the valid keys sorted ascending as v,
 * `pos = q·(n − 1)` (float32, as torch computes it for float32 input), `τ = v[⌊pos⌋] +
 * (pos − ⌊pos⌋)·(v[⌈pos⌉] − v[⌊pos⌋])`. Keys tied at τ are all kept. Only the top
 * `n − ⌊pos⌋` keys are sorted (one TopK), not all of them.
 *
 * @param b Builder to record into.
 * @param key [B, W] float32 keys (entropies, no gradient).
 * @param mask [B, W] float32 0/1 valid tokens.
 * @param q The quantile, in [0, 1).
 * @returns [B, W] float32 0/1 mask.
 */
export function quantileMask(b: GraphBuilder, key: Value, mask: Value, q: number): Value {
  const n = countOf(b, mask);
  const pos = b.mul(b.scalar(q), b.sub(n, b.scalar(1))); //           float32, may be < 0 if n = 0
  const lo = b.op1("Floor", [pos]);
  const hi = b.op1("Ceil", [pos]);
  const k = b.sub(n, lo); //                                          ≥ 1 (n = 0 gives 1)
  const flat = b.reshape(b.where(b.greater(mask, b.scalar(0)), key, b.scalar(-Infinity)), [-1]);
  const kIdx = b.reshape(b.cast(k, "int64"), [1]);
  const [top] = b.op("TopK", [flat, kIdx], { axis: 0, largest: 1, sorted: 1 }); // [k] descending
  // v[⌊pos⌋] is the k-th largest (index k − 1); v[⌈pos⌉] is (⌈pos⌉ − ⌊pos⌋) places before it.
  const at = (i: Value) => b.gather(top, b.cast(i, "int64"));
  const iLo = b.sub(k, b.scalar(1));
  const vLo = at(iLo);
  const vHi = at(b.sub(iLo, b.sub(hi, lo)));
  const tau = b.add(vLo, b.mul(b.sub(pos, lo), b.sub(vHi, vLo)));
  return b.mul(b.cast(b.greaterOrEqual(key, tau), "float32"), mask);
}

/**
 * The values the reference code's SENT v2 actually reads for its covariance (its "indexing
 * defect"): it gathers `advantages[response_mask]` with an int64 0/1 mask, which picks whole
 * rows, so entry `p` of the flattened result (the p-th valid token in row-major order) holds
 * `A_tok[r, p mod L]` with `r = m[⌊p/L⌋]` read as a flat index into the mask (row 0 or 1),
 * where `A_tok = A·m` and L is the padded response length; likewise for the log-probs.
 *
 * Our rows hold prompt and response together, so the reference's response-aligned column c of
 * row i is our column `s_i + c`, with `s_i` the row's first response position; L = W. Reads past
 * the end of a row give 0. With one row the reference would index row 1 and fail; we read the
 * last row instead.
 *
 * @param b Builder to record into.
 * @param advTok [B, W] token advantages A·m.
 * @param logp [B, W] log-probs as computed, padding included (no gradient).
 * @param mask [B, W] float32 0/1 response mask.
 * @returns The scrambled advantage and log-prob seen at each valid token, [B, W] each.
 */
export function rowGathered(
  b: GraphBuilder,
  advTok: Value,
  logp: Value,
  mask: Value,
): { adv: Value; logp: Value } {
  const i64 = (x: number) => b.scalar(x, "int64");
  const dims = b.shape(mask); //                                          int64 [2]
  const rowsN = b.gather(dims, i64(0));
  const width = b.gather(dims, i64(1));
  const flatMask = b.reshape(mask, [-1]); //                              [F]
  const rank = b.op1("CumSum", [flatMask, i64(0)]); //                    valid tokens up to here
  const p = b.max(b.cast(b.sub(rank, b.scalar(1)), "int64"), i64(0)); //  valid index, int64 [F]
  const starts = b.argmax(mask, 1, false); //                             first response column [B]
  const lastRow = b.sub(rowsN, i64(1));
  const floorDiv = (x: Value) => b.div(x, width); //                      x ≥ 0: integer division
  // Flat index of response-aligned (row, col), and whether the column lies inside the row.
  const aligned = (row: Value, col: Value) => {
    const c = b.add(b.gather(starts, row), col);
    const inside = b.less(c, width);
    return { idx: b.add(b.mul(row, width), b.min(c, b.sub(width, i64(1)))), inside };
  };
  const q = floorDiv(p); //                                               ⌊p/L⌋
  const col = b.sub(p, b.mul(q, width)); //                               p mod L
  const qRow = b.min(floorDiv(q), lastRow);
  const qAt = aligned(qRow, b.sub(q, b.mul(floorDiv(q), width)));
  const rowFlag = b.where(qAt.inside, b.gather(flatMask, qAt.idx), b.scalar(0)); // m[⌊p/L⌋]
  const row = b.min(b.cast(rowFlag, "int64"), lastRow);
  const at = aligned(row, col);
  const read = (x: Value) =>
    b.reshape(b.where(at.inside, b.gather(b.reshape(x, [-1]), at.idx), b.scalar(0)), dims);
  return { adv: read(advTok), logp: read(logp) };
}
