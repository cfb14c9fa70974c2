/**
 * Every gradient rule checked against central differences through ONNX Runtime (CPU EP).
 * The database below is the list of checks; each entry is one op, one situation (broadcasting,
 * batching, symbolic dims, ties…). float64 unless the CPU EP has no double kernel for the op
 * (Erf, Gelu: float32 with the looser defaults of `_gradcheck.ts`).
 */

import { deepEqual, ok } from "node:assert/strict";
import type { GraphBuilder } from "../../kernels/builder.ts";
import { floatAttr } from "../../kernels/builder.ts";
import type { Value } from "../../kernels/ir.ts";
import { GRAD_RULES } from "../../kernels/grad_rules.ts";
import { type GradCase, gradcheck } from "./_gradcheck.ts";

const ints = (lo: number, hi: number) => ({ ints: [lo, hi] as const });
const f64 = (b: GraphBuilder, x: number) => b.scalar(x, "float64");

/** The op database: every differentiable rule has at least one entry. */
// deno-fmt-ignore
const CASES: GradCase[] = [
  // ----- arithmetic with broadcasting -----
  { op: "Add", name: "same shapes", inputs: [{ shape: [2, 3] }, { shape: [2, 3] }], build: (b, [x, y]) => b.add(x, y) },
  { op: "Add", name: "bias broadcast over leading axes", inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], build: (b, [x, y]) => b.add(x, y) },
  { op: "Add", name: "both operands broadcast", inputs: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], build: (b, [x, y]) => b.add(x, y) },
  { op: "Add", name: "symbolic batch with a static 1", inputs: [{ shape: [3, 4], declared: ["n", 4] }, { shape: [1, 4] }], build: (b, [x, y]) => b.add(x, y) },
  { op: "Sub", name: "row broadcast", inputs: [{ shape: [2, 3] }, { shape: [3] }], build: (b, [x, y]) => b.sub(x, y) },
  { op: "Sub", name: "outer broadcast", inputs: [{ shape: [3, 1] }, { shape: [1, 4] }], build: (b, [x, y]) => b.sub(x, y) },
  { op: "Mul", name: "inner broadcast", inputs: [{ shape: [2, 3, 4] }, { shape: [3, 1] }], build: (b, [x, y]) => b.mul(x, y) },
  { op: "Mul", name: "scalar operand", inputs: [{ shape: [] }, { shape: [2, 3] }], build: (b, [x, y]) => b.mul(x, y) },
  { op: "Div", name: "broadcast divisor", inputs: [{ shape: [2, 3] }, { shape: [3], gen: "positive" }], build: (b, [x, y]) => b.div(x, y) },
  { op: "Div", name: "scalar numerator", inputs: [{ shape: [] }, { shape: [4], gen: "positive" }], build: (b, [x, y]) => b.div(x, y) },
  { op: "Pow", name: "constant exponent 3", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.pow(x, f64(b, 3)) },
  { op: "Pow", name: "constant exponent 2", inputs: [{ shape: [5] }], build: (b, [x]) => b.pow(x, f64(b, 2)) },
  { op: "Pow", name: "constant exponent -0.5", inputs: [{ shape: [5], gen: "positive" }], build: (b, [x]) => b.pow(x, f64(b, -0.5)) },
  { op: "Pow", name: "base and broadcast exponent", inputs: [{ shape: [2, 3], gen: "positive" }, { shape: [3] }], build: (b, [x, p]) => b.pow(x, p) },
  { op: "Pow", name: "exponent gradient at a negative base", skip: "dL/dp = g·y·log(x) is undefined for x < 0; the rule is checked for x > 0 only", inputs: [{ shape: [3], gen: [-1, -2, -0.5] }, { shape: [] }], build: (b, [x, p]) => b.pow(x, p) },
  { op: "Neg", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.neg(x) },
  { op: "Identity", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.identity(x) },
  { op: "Cast", name: "float64 → float32 → float64", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.cast(b.mul(b.cast(x, "float32"), b.scalar(3)), "float64"), eps: 1e-2, atol: 1e-4 },
  // ----- unary activations -----
  { op: "Sqrt", name: "positive", inputs: [{ shape: [2, 3], gen: "positive" }], build: (b, [x]) => b.sqrt(x) },
  { op: "Reciprocal", name: "positive", inputs: [{ shape: [2, 3], gen: "positive" }], build: (b, [x]) => b.reciprocal(x) },
  { op: "Exp", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.exp(x) },
  { op: "Log", name: "positive", inputs: [{ shape: [2, 3], gen: "positive" }], build: (b, [x]) => b.log(x) },
  { op: "Tanh", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.tanh(x) },
  { op: "Sigmoid", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.sigmoid(x) },
  { op: "Erf", name: "float32", dtype: "float32", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.erf(x) },
  { op: "Gelu", name: "exact, float32", dtype: "float32", inputs: [{ shape: [2, 4] }], build: (b, [x]) => b.gelu(x) },
  { op: "Gelu", name: "tanh approximation, float32", dtype: "float32", inputs: [{ shape: [2, 4] }], build: (b, [x]) => b.gelu(x, "tanh") },
  { op: "Relu", name: "values away from 0", inputs: [{ shape: [3, 4], gen: "apart" }], build: (b, [x]) => b.relu(x) },
  { op: "Abs", name: "values away from 0", inputs: [{ shape: [3, 4], gen: "apart" }], build: (b, [x]) => b.abs(x) },
  { op: "Sin", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.sin(x) },
  { op: "Cos", name: "matrix", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.cos(x) },
  // ----- selection -----
  { op: "Max", name: "broadcast", inputs: [{ shape: [2, 3], gen: "apart" }, { shape: [3] }], build: (b, [x, y]) => b.max(x, y) },
  { op: "Max", name: "ties split evenly (max(x, x))", inputs: [{ shape: [4] }], build: (b, [x]) => b.max(x, x) },
  { op: "Min", name: "broadcast", inputs: [{ shape: [2, 3], gen: "apart" }, { shape: [2, 1] }], build: (b, [x, y]) => b.min(x, y) },
  { op: "Clip", name: "constant bounds", inputs: [{ shape: [3, 4], gen: "apart" }], build: (b, [x]) => b.clip(x, f64(b, -0.35), f64(b, 0.45)) },
  { op: "Clip", name: "bounds as inputs", inputs: [{ shape: [3, 4], gen: "apart" }, { shape: [], gen: [-0.35] }, { shape: [], gen: [0.45] }], build: (b, [x, lo, hi]) => b.clip(x, lo, hi) },
  { op: "Clip", name: "lower bound only", inputs: [{ shape: [6], gen: "apart" }], build: (b, [x]) => b.clip(x, f64(b, 0), null) },
  { op: "Where", name: "broadcast branch", inputs: [{ shape: [2, 3], dtype: "bool", gen: "bool" }, { shape: [2, 3] }, { shape: [3] }], build: (b, [c, x, y]) => b.where(c, x, y) },
  { op: "Where", name: "condition broadcasts both branches", inputs: [{ shape: [3, 1], dtype: "bool", gen: "bool" }, { shape: [1, 4] }, { shape: [] }], build: (b, [c, x, y]) => b.where(c, x, y) },
  // ----- reductions and normalisers -----
  { op: "ReduceSum", name: "axis 1, keepdims", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.reduceSum(x, [1]) },
  { op: "ReduceSum", name: "axes 0 and 2, no keepdims", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.reduceSum(x, [0, 2], false) },
  { op: "ReduceSum", name: "all axes (no axes input)", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.op1("ReduceSum", [x], { keepdims: 0 }) },
  { op: "ReduceSum", name: "symbolic axis reduced", inputs: [{ shape: [3, 2], declared: ["n", 2] }], build: (b, [x]) => b.reduceSum(x, [0], false) },
  { op: "ReduceMean", name: "last axis", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.reduceMean(x, [-1]) },
  { op: "ReduceMean", name: "symbolic axis reduced (count at run time)", inputs: [{ shape: [3, 2], declared: ["n", 2] }], build: (b, [x]) => b.reduceMean(x, [0], false) },
  { op: "ReduceMax", name: "distinct values", inputs: [{ shape: [3, 4], gen: "apart" }], build: (b, [x]) => b.reduceMax(x, [1], false) },
  { op: "ReduceMax", name: "tied maxima share the gradient", inputs: [{ shape: [2, 3], gen: [1, 1, 0.5, -2, 0.25, -1] }], build: (b, [x]) => b.reduceMax(x, [1]) },
  { op: "ReduceMin", name: "distinct values", inputs: [{ shape: [3, 4], gen: "apart" }], build: (b, [x]) => b.op1("ReduceMin", [x, b.ints([0])], { keepdims: 0 }) },
  { op: "ReduceLogSumExp", name: "last axis", inputs: [{ shape: [2, 5] }], build: (b, [x]) => b.reduceLogSumExp(x, [-1]) },
  { op: "ReduceLogSumExp", name: "no keepdims", inputs: [{ shape: [2, 5] }], build: (b, [x]) => b.reduceLogSumExp(x, [1], false) },
  { op: "ReduceSumSquare", name: "axis 0", inputs: [{ shape: [3, 2] }], build: (b, [x]) => b.reduceSumSquare(x, [0], false) },
  { op: "Softmax", name: "last axis", inputs: [{ shape: [2, 5] }], build: (b, [x]) => b.softmax(x) },
  { op: "Softmax", name: "middle axis of 3-D", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.softmax(x, 1) },
  { op: "LogSoftmax", name: "the ONNX op", inputs: [{ shape: [2, 5] }], build: (b, [x]) => b.op1("LogSoftmax", [x], { axis: -1 }) },
  { op: "LogSoftmax", name: "WebGPU-safe rewrite x − logsumexp(x)", inputs: [{ shape: [3, 4] }], build: (b, [x]) => b.logSoftmax(x) },
  { op: "CumSum", name: "forward", inputs: [{ shape: [2, 4] }], build: (b, [x]) => b.op1("CumSum", [x, b.scalar(1, "int64")]) },
  { op: "CumSum", name: "reverse exclusive", inputs: [{ shape: [4, 2] }], build: (b, [x]) => b.op1("CumSum", [x, b.scalar(0, "int64")], { reverse: 1, exclusive: 1 }) },
  // ----- matrix products -----
  { op: "MatMul", name: "2-D × 2-D", inputs: [{ shape: [3, 4] }, { shape: [4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "3-D activation × 2-D weight (Gemm path)", inputs: [{ shape: [2, 3, 4] }, { shape: [4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "symbolic rows × 2-D weight", inputs: [{ shape: [2, 3, 4], declared: ["b", "t", 4] }, { shape: [4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "4-D batched", inputs: [{ shape: [2, 3, 2, 4] }, { shape: [2, 3, 4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "broadcast batch dims", inputs: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "2-D × 3-D", inputs: [{ shape: [3, 4] }, { shape: [2, 4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "vector × matrix", inputs: [{ shape: [4] }, { shape: [4, 3] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "batched matrix × vector", inputs: [{ shape: [2, 3, 4] }, { shape: [4] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "MatMul", name: "vector · vector", inputs: [{ shape: [4] }, { shape: [4] }], build: (b, [x, w]) => b.matmul(x, w) },
  { op: "Gemm", name: "plain with C [N]", inputs: [{ shape: [3, 4] }, { shape: [4, 2] }, { shape: [2] }], build: (b, [a, w, c]) => b.gemm(a, w, c) },
  { op: "Gemm", name: "transA, alpha 0.5, beta 2, C [M,1]", inputs: [{ shape: [4, 3] }, { shape: [4, 2] }, { shape: [3, 1] }], build: (b, [a, w, c]) => b.gemm(a, w, c, { transA: true, alpha: 0.5, beta: 2 }) },
  { op: "Gemm", name: "transB, no C", inputs: [{ shape: [3, 4] }, { shape: [2, 4] }], build: (b, [a, w]) => b.gemm(a, w, null, { transB: true }) },
  { op: "Gemm", name: "transA and transB, scalar C", inputs: [{ shape: [4, 3] }, { shape: [2, 4] }, { shape: [] }], build: (b, [a, w, c]) => b.gemm(a, w, c, { transA: true, transB: true, alpha: 1.5 }) },
  // ----- shape ops -----
  { op: "Reshape", name: "static", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.reshape(x, [6, 4]) },
  { op: "Reshape", name: "symbolic dim kept by 0 and -1", inputs: [{ shape: [3, 6], declared: ["n", 6] }], build: (b, [x]) => b.reshape(x, [0, 2, 3]) },
  { op: "Reshape", name: "symbolic dims merged", inputs: [{ shape: [2, 3, 4], declared: ["b", "t", 4] }], build: (b, [x]) => b.reshape(x, [-1, 2]) },
  { op: "Transpose", name: "perm [2,0,1]", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.transpose(x, [2, 0, 1]) },
  { op: "Transpose", name: "default perm", inputs: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.op1("Transpose", [x]) },
  { op: "Unsqueeze", name: "axes [1, -1]", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.unsqueeze(x, [1, -1]) },
  { op: "Squeeze", name: "axes", inputs: [{ shape: [2, 1, 3, 1] }], build: (b, [x]) => b.squeeze(x, [1, 3]) },
  { op: "Squeeze", name: "no axes", inputs: [{ shape: [1, 3, 1] }], build: (b, [x]) => b.op1("Squeeze", [x]) },
  { op: "Expand", name: "new and size-1 axes", inputs: [{ shape: [3, 1] }], build: (b, [x]) => b.expand(x, [2, 3, 4]) },
  { op: "Slice", name: "two axes, step 1", inputs: [{ shape: [4, 5] }], build: (b, [x]) => b.slice(x, [1, 0], [3, 4], [0, 1]) },
  { op: "Slice", name: "negative start, end past the size", inputs: [{ shape: [3, 5] }], build: (b, [x]) => b.slice(x, [-3], [100], [1]) },
  { op: "Slice", name: "step 2", inputs: [{ shape: [2, 7] }], build: (b, [x]) => b.slice(x, [1], [7], [1], [2]) },
  { op: "Slice", name: "step -1 (reversal)", inputs: [{ shape: [5, 2] }], build: (b, [x]) => b.slice(x, [-1], [-100], [0], [-1]) },
  { op: "Slice", name: "static axis of a symbolic-batch tensor", inputs: [{ shape: [3, 6], declared: ["n", 6] }], build: (b, [x]) => b.slice(x, [0], [3], [1]) },
  { op: "Slice", name: "symbolic axis from an offset", inputs: [{ shape: [5, 2], declared: ["n", 2] }], build: (b, [x]) => b.slice(x, [1], [-1], [0]), cpuFallback: "the pad of a symbolic axis is computed with int64 arithmetic" },
  { op: "Pad", name: "begin and end", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.pad(x, [1, 0, 0, 2]) },
  { op: "Pad", name: "axes input", inputs: [{ shape: [2, 3] }], build: (b, [x]) => b.pad(x, [2, 1], null, [1]) },
  { op: "Concat", name: "three static pieces", inputs: [{ shape: [2, 1] }, { shape: [2, 3] }, { shape: [2, 2] }], build: (b, [x, y, z]) => b.concat([x, y, z], 1) },
  { op: "Concat", name: "one symbolic piece, a constant beside it", inputs: [{ shape: [2, 2] }, { shape: [3, 2], declared: ["n", 2] }], build: (b, [x, y]) => b.concat([x, y, b.constant("float64", [1, 2], Float64Array.of(1, 2))], 0) },
  { op: "Split", name: "an unused output gets zeros", inputs: [{ shape: [2, 6] }], build: (b, [x]) => splitUse(b, x) },
  { op: "Trilu", name: "lower with k = -1", inputs: [{ shape: [3, 4] }], build: (b, [x]) => b.trilu(x, false, -1) },
  // ----- indexing -----
  { op: "Gather", name: "embedding rows, repeated ids", inputs: [{ shape: [5, 3] }, { shape: [2, 4], dtype: "int32", gen: [0, 2, 2, 4, 1, 0, 2, 3] }], build: (b, [w, i]) => b.gather(w, i) },
  { op: "Gather", name: "axis 1 with a 2-D index", inputs: [{ shape: [2, 4, 3] }, { shape: [2, 2], dtype: "int32", gen: ints(0, 3) }], build: (b, [x, i]) => b.gather(x, i, 1) },
  { op: "Gather", name: "scalar index", inputs: [{ shape: [4, 3] }, { shape: [], dtype: "int32", gen: [2] }], build: (b, [x, i]) => b.gather(x, i) },
  { op: "Gather", name: "int64 ids", inputs: [{ shape: [5, 2] }, { shape: [3], dtype: "int64", gen: [4, 1, 4] }], build: (b, [w, i]) => b.gather(w, i), cpuFallback: "ScatterND needs the ids as [..., 1]; an int64 Unsqueeze has no WebGPU kernel (int32 ids are unsqueezed before their Cast)" },
  { op: "GatherElements", name: "token log-probs along the last axis", inputs: [{ shape: [3, 5] }, { shape: [3, 2], dtype: "int64", gen: ints(0, 4) }], build: (b, [x, i]) => b.gatherElements(x, i, 1) },
  { op: "GatherND", name: "index pairs", inputs: [{ shape: [3, 4, 2] }, { shape: [3, 2], dtype: "int64", gen: [0, 1, 2, 3, 0, 1] }], build: (b, [x, i]) => b.gatherND(x, i) },
  { op: "ScatterND", name: "reduction none", inputs: [{ shape: [4, 2] }, { shape: [2, 1], dtype: "int64", gen: [3, 1] }, { shape: [2, 2] }], build: (b, [x, i, u]) => b.scatterND(x, i, u) },
  { op: "ScatterND", name: "reduction add", inputs: [{ shape: [4, 2] }, { shape: [3, 1], dtype: "int64", gen: [3, 1, 3] }, { shape: [3, 2] }], build: (b, [x, i, u]) => b.scatterND(x, i, u, "add") },
  { op: "ScatterElements", name: "reduction none", inputs: [{ shape: [2, 4] }, { shape: [2, 2], dtype: "int64", gen: [0, 2, 3, 1] }, { shape: [2, 2] }], build: (b, [x, i, u]) => b.scatterElements(x, i, u, 1) },
  { op: "ScatterElements", name: "reduction add", inputs: [{ shape: [2, 4] }, { shape: [2, 2], dtype: "int64", gen: [0, 0, 3, 1] }, { shape: [2, 2] }], build: (b, [x, i, u]) => b.scatterElements(x, i, u, 1, "add") },
  { op: "TopK", name: "values", inputs: [{ shape: [2, 5], gen: "apart" }], build: (b, [x]) => b.topk(x, 2)[0] },
  // ----- compositions the transformer uses -----
  { op: "Mul", name: "RMSNorm x·(mean(x²)+ε)^−½·w", inputs: [{ shape: [2, 3, 4], declared: ["b", "t", 4] }, { shape: [4] }], build: (b, [x, w]) => rmsNorm(b, x, w) },
  { op: "Softmax", name: "masked causal attention scores", inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }], build: (b, [q, k]) => attention(b, q, k) },
];

/** Split into [1, 2, 3] along axis 1 and use only the first and last piece. */
function splitUse(b: GraphBuilder, x: Value): Value {
  const [p, , r] = b.split(x, [1, 2, 3], 1);
  return b.concat([b.mul(p, f64(b, 2)), r], 1);
}

function rmsNorm(b: GraphBuilder, x: Value, w: Value): Value {
  const ms = b.reduceMean(b.mul(x, x), [-1]);
  return b.mul(b.div(x, b.sqrt(b.add(ms, f64(b, 1e-5)))), w);
}

function attention(b: GraphBuilder, q: Value, k: Value): Value {
  const scores = b.matmul(q, b.transpose(k, [0, 2, 1])); // [2,3,3]
  const mask = b.constant("bool", [3, 3], Uint8Array.of(1, 0, 0, 1, 1, 0, 1, 1, 1));
  const masked = b.where(mask, scores, f64(b, -1e9));
  return b.matmul(b.softmax(b.mul(masked, f64(b, 0.5))), k);
}

for (const c of CASES) {
  Deno.test({
    name: `gradient of ${c.op} (${c.name}) matches central differences`,
    ignore: c.skip !== undefined,
    fn: async () => {
      const report = await gradcheck(c);
      ok(report.checked > 0, "no element was checked");
    },
  });
}

Deno.test("every differentiable op in GRAD_RULES has a gradient check", () => {
  const covered = new Set(CASES.filter((c) => !c.skip).map((c) => c.op));
  const missing = Object.entries(GRAD_RULES)
    .filter(([op, r]) => r.grad && !covered.has(op))
    .map(([op]) => op);
  deepEqual(missing, []);
});

Deno.test("GRAD_RULES registers the kind of every op, and zero kinds carry no rule", () => {
  for (const [op, r] of Object.entries(GRAD_RULES)) {
    const differentiable = r.kind !== "zero" && r.kind !== "non-differentiable";
    deepEqual(typeof r.grad === "function", differentiable, `${op} (${r.kind})`);
  }
  deepEqual(GRAD_RULES.Exp.kind, "uses-output");
  deepEqual(GRAD_RULES.Reshape.kind, "linear");
  deepEqual(GRAD_RULES.Floor.kind, "zero");
  deepEqual(GRAD_RULES.Not.kind, "non-differentiable");
});

Deno.test("Gemm gradient keeps alpha as an attribute", async () => {
  const { graph } = await gradcheck({
    op: "Gemm",
    name: "alpha folded",
    inputs: [{ shape: [2, 3] }, { shape: [3, 2] }],
    build: (b, [a, w]) => b.gemm(a, w, null, { alpha: 0.25 }),
  });
  const gemms = graph.nodes.filter((n) => n.op === "Gemm");
  deepEqual(gemms.length, 3);
  for (const n of gemms) deepEqual(n.attrs.alpha, floatAttr(0.25));
});
