/**
 * Gradient rules of MatMul and Gemm, written so the backward pass stays GEMM-bound:
 * transposes fold into Gemm's transA/transB wherever the shapes allow, and an N-D activation
 * times a 2-D weight gets its weight gradient from one [K, rows]×[rows, N] Gemm.
 *
 * Dimension letters: A is [..., M, K], B is [..., K, N], Y = A·B is [..., M, N]; G = dL/dY.
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Dim, Shape, Value } from "./ir.ts";
import { isStatic } from "./ir.ts";
import type { GradContext, GradRule } from "./_grad_util.ts";
import {
  attrFloat,
  attrInt,
  each,
  inp,
  out,
  reshapeLike,
  rule,
  scalarOf,
  swapLast,
  unbroadcast,
} from "./_grad_util.ts";

/** Scale by a constant unless it is 1. */
function scaled(b: GraphBuilder, v: Value, s: number): Value {
  return s === 1 ? v : b.mul(v, scalarOf(b, s, v.dtype));
}

/**
 * Rows-to-columns copy of an N-D activation [..., R] as [R, rows], made with a Transpose that
 * moves the last axis to the front (not a 2-D matrix transpose, so ORT's Gemm/MatMul transpose
 * fusions leave it alone) and a Reshape. Cached per builder and value: the q/k/v projections
 * share one input, as do gate and up, so one copy serves all their weight gradients.
 */
const columnsCache = new WeakMap<GraphBuilder, Map<string, Value>>();
function columns(b: GraphBuilder, x: Value, r: number): Value {
  let cache = columnsCache.get(b);
  if (!cache) columnsCache.set(b, cache = new Map());
  let t = cache.get(x.name);
  if (!t) {
    const rank = x.shape.length;
    const perm = [rank - 1, ...Array.from({ length: rank - 1 }, (_, i) => i)];
    t = b.reshape(b.transpose(x, perm), [r, -1]);
    cache.set(x.name, t);
  }
  return t;
}

/**
 * Activation [..., M, K] times weight [K, N] (static K, N), the linear-layer case:
 * dA = reshape(Gemm(G₂, B, transB)), with G₂ = G as [rows, N].
 *
 * dB = A₂ᵀ·G₂ (A₂ = A as [rows, K]). For an N-D activation it is a plain MatMul of an explicit
 * [K, rows] copy of A (or of G, then transposed back: whichever copy is smaller, or A when its
 * copy already exists): MLAS's transA path is slow for these long-reduction products. Measured on
 * the 2-core CPU, rows = 4096: [4096, 512]ᵀ·[4096, 1408] took 77 ms as Gemm(transA) and 54 ms as
 * Transpose + MatMul (transpose included), 27 vs 20 ms at [4096, 512]ᵀ·[4096, 512]. Below
 * 512 × 512 weights the two are within noise (192 × 512: mixed; 64 × 64: equal), so smaller
 * weights and 2-D activations keep the single Gemm(A₂, G₂, transA).
 */
/** Weight size (K·N) from which the weight gradient uses an explicit transposed copy. */
const COPY_MIN_WEIGHT = 512 * 512;

function weightMatmulGrads(c: GradContext, k: number, n: number): (Value | null)[] {
  const b = c.b;
  const [a, w] = [inp(c, 0), inp(c, 1)];
  const flat = a.shape.length > 2;
  let g2: Value | undefined;
  const rows = (g: Value) => (g2 ??= flat ? b.reshape(g, [-1, n]) : g);
  const weightGrad = (g: Value): Value => {
    const a2 = flat ? b.reshape(a, [-1, k]) : a;
    if (!flat || k * n < COPY_MIN_WEIGHT) return b.gemm(a2, rows(g), null, { transA: true }); // [K, N]
    if (columnsCache.get(b)?.has(a.name) || k <= n) return b.matmul(columns(b, a, k), rows(g));
    return b.transpose(b.matmul(columns(b, g, n), a2), [1, 0]); // ([N, rows]·[rows, K])ᵀ
  };
  return each(
    c,
    (g) => {
      const da = b.gemm(rows(g), w, null, { transB: true }); // [rows, K]
      return flat ? reshapeLike(b, da, [da.shape[0], k], a) : da;
    },
    weightGrad,
  );
}

/**
 * Batched MatMul with both operands at least 2-D: dA = G·Bᵀ, dB = Aᵀ·G, each summed over the
 * batch axes its operand was broadcast along. `batch` is Y's batch shape.
 */
function batchedGrads(
  b: GraphBuilder,
  [a, w]: [Value, Value],
  batch: Shape,
  g: Value,
  needs: readonly boolean[],
): [Value | null, Value | null] {
  const [m, k, n]: Dim[] = [a.shape.at(-2)!, a.shape.at(-1)!, w.shape.at(-1)!];
  return [
    needs[0] ? unbroadcast(b, b.matmul(g, swapLast(b, w)), [...batch, m, k], a.shape) : null,
    needs[1] ? unbroadcast(b, b.matmul(swapLast(b, a), g), [...batch, k, n], w.shape) : null,
  ];
}

/** MatMul: the linear-layer path, the batched path, or 1-D operands lifted to 2-D first. */
function matmulGrads(c: GradContext): (Value | null)[] {
  const [a, w, y] = [inp(c, 0), inp(c, 1), out(c)];
  if (a.shape.length === 1 || w.shape.length === 1) return vectorMatmulGrads(c);
  const [k, n] = [w.shape.at(-2)!, w.shape.at(-1)!];
  if (w.shape.length === 2 && isStatic(k) && isStatic(n)) return weightMatmulGrads(c, k, n);
  return batchedGrads(c.b, [a, w], y.shape.slice(0, -2), c.dy[0]!, c.needs);
}

/**
 * MatMul with a 1-D operand (numpy semantics: a vector A acts as [1, K], a vector B as [K, 1],
 * and the added axis is dropped from Y): lift A, B and G to 2-D, use the batched rule, and
 * reshape the gradients back.
 */
function vectorMatmulGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const [a, w, y] = [inp(c, 0), inp(c, 1), out(c)];
  const a2 = a.shape.length === 1 ? b.unsqueeze(a, [0]) : a;
  const w2 = w.shape.length === 1 ? b.unsqueeze(w, [1]) : w;
  const batch = y.shape.slice(
    0,
    y.shape.length - (a.shape.length > 1 ? 1 : 0) -
      (w.shape.length > 1 ? 1 : 0),
  );
  const y2: Shape = [...batch, a2.shape.at(-2)!, w2.shape.at(-1)!];
  const g2 = b.reshape(c.dy[0]!, y2.map((d) => (isStatic(d) ? d : 0)));
  const [da, dw] = batchedGrads(b, [a2, w2], batch, g2, c.needs);
  return [
    da && reshapeLike(b, da, a2.shape, a),
    dw && reshapeLike(b, dw, w2.shape, w),
  ];
}

/**
 * Gemm: Y = α·op(A)·op(B) + β·C, op = transpose when transA/transB is set. Each input gradient
 * is one Gemm with the transposes folded in:
 * - dA = α·G·op(B)ᵀ, or its transpose α·op(B)·Gᵀ when transA;
 * - dB = α·op(A)ᵀ·G, or its transpose α·Gᵀ·op(A) when transB;
 * - dC = β·G summed over C's broadcast axes.
 */
function gemmGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const [a, w] = [inp(c, 0), inp(c, 1)];
  const [ta, tb] = [attrInt(c.node, "transA", 0) === 1, attrInt(c.node, "transB", 0) === 1];
  const [alpha, beta] = [attrFloat(c.node, "alpha", 1), attrFloat(c.node, "beta", 1)];
  const opts = (transA: boolean, transB: boolean) => ({ transA, transB, alpha });
  return each(
    c,
    (g) => (ta ? b.gemm(w, g, null, opts(tb, true)) : b.gemm(g, w, null, opts(false, !tb))),
    (g) => (tb ? b.gemm(g, a, null, opts(true, ta)) : b.gemm(a, g, null, opts(!ta, false))),
    (g) => scaled(b, unbroadcast(b, g, out(c).shape, inp(c, 2).shape), beta),
  );
}

/** Gradient rules of the matrix products, keyed by ONNX op type. */
export const LINALG_RULES: Readonly<Record<string, GradRule>> = {
  MatMul: rule("uses-input", matmulGrads),
  Gemm: rule("uses-input", gemmGrads),
};
