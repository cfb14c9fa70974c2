/**
 * GraphBuilder: shape inference, and build-time errors that name the op, the input shapes and
 * what was expected. A graph it builds runs in ONNX Runtime.
 */

import { deepEqual, equal, match, throws } from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { GraphBuilder } from "../../kernels/builder.ts";
import type { Value } from "../../kernels/ir.ts";
import { serializeModel } from "../../kernels/onnx_proto.ts";

/** Inputs shared by the error cases: a [batch,3], w [4,5], c [2,4], v [3] (all float32). */
function fixture() {
  const b = new GraphBuilder("g");
  const a = b.input("a", "float32", ["batch", 3]);
  const w = b.input("w", "float32", [4, 5]);
  const c = b.input("c", "float32", [2, 4]);
  const v = b.input("v", "float32", [3]);
  return { b, a, w, c, v };
}

type Fixture = ReturnType<typeof fixture>;

/** Each entry: what is wrong, how to provoke it, and the message expected (a regex). */
// deno-fmt-ignore
const ERRORS: [string, (f: Fixture) => unknown, RegExp][] = [
  ["MatMul inner dims", ({ b, a, w }) => b.matmul(a, w),
    /^MatMul\(a: float32\[batch,3\], w: float32\[4,5\]\): inner dims differ: A's last dim is 3, B's second-to-last is 4 \(expected equal\)$/],
  ["MatMul batch dims", ({ b }) => b.matmul(b.input("p", "float32", [2, 3, 4]), b.input("q", "float32", [5, 4, 6])),
    /^MatMul\(p: float32\[2,3,4\], q: float32\[5,4,6\]\): batch dims do not broadcast: axis -1 has sizes 2 and 5/],
  ["MatMul rank 0", ({ b, w }) => b.matmul(b.scalar(1), w), /^MatMul\(scalar: float32\[\], w: float32\[4,5\]\): operands must have rank ≥ 1$/],
  ["Gemm inner dims with transB", ({ b, c, w }) => b.gemm(c, w, null, { transB: true }),
    /^Gemm\(c: float32\[2,4\], w: float32\[4,5\]\): inner dims differ: op\(A\) is \[2,4\], op\(B\) is \[5,4\] \(transA=0, transB=1\)$/],
  ["Gemm C", ({ b, c, w, v }) => b.gemm(c, w, v), /^Gemm\(c: .*, v: float32\[3\]\): C does not broadcast to \[M,N\]$/],
  ["broadcast", ({ b, a, c }) => b.add(a, c),
    /^Add\(a: float32\[batch,3\], c: float32\[2,4\]\): shapes do not broadcast: axis -1 has sizes 3 and 4 \(numpy rules: equal, or one of them 1\)$/],
  ["dtype mix", ({ b, a }) => b.mul(a, b.input("d", "float64", [3])), /^Mul\(a: float32\[batch,3\], d: float64\[3\]\): inputs must share one dtype, got float64 and float32$/],
  ["Where condition", ({ b, a }) => b.where(a, a, a), /^Where\(.*\): condition must be bool, got float32$/],
  ["Reshape count", ({ b, c }) => b.reshape(c, [3, -1]), /^Reshape\(c: float32\[2,4\], ints: int64\[2\]\): cannot reshape 8 elements into \[3,-1\]$/],
  ["Reshape size", ({ b, c }) => b.reshape(c, [3, 3]), /^Reshape\(c: float32\[2,4\], .*\): cannot reshape 8 elements into \[3,3\]$/],
  ["Concat dims", ({ b, c, w }) => b.concat([c, w], 0),
    /^Concat\(c: float32\[2,4\], w: float32\[4,5\]\): dim 1 differs: c has 4, w has 5 \(all dims but axis 0 must match\)$/],
  ["Concat rank", ({ b, c, v }) => b.concat([c, v], 0), /^Concat\(.*\): inputs must have the same rank, got 1 and 2$/],
  ["Concat axis", ({ b, c }) => b.concat([c, c], 2), /^Concat\(.*\): axis 2 is out of range for rank 2$/],
  ["Transpose repeated axis", ({ b, c }) => b.transpose(c, [0, 0]),
    /^Transpose\(c: float32\[2,4\]\): perm \[0,0\] is not a permutation of rank 2; expected each of 0..1 once$/],
  ["Transpose axis out of range", ({ b, c }) => b.transpose(c, [0, 2]), /perm \[0,2\] is not a permutation of rank 2/],
  ["Split sizes", ({ b, c }) => b.split(c, [1, 2], 1), /^Split\(c: float32\[2,4\], .*\): split sizes \[1,2\] do not add up to 4$/],
  ["Squeeze non-1 axis", ({ b, c }) => b.squeeze(c, [0]), /^Squeeze\(c: float32\[2,4\], .*\): axis 0 has size 2, not 1$/],
  ["Unsqueeze axis", ({ b, c }) => b.unsqueeze(c, [5]), /^Unsqueeze\(.*\): axes \[5\] must be distinct and within output rank 3$/],
  ["Expand", ({ b, c }) => b.expand(c, [3, 4]), /^Expand\(c: float32\[2,4\], .*\): cannot expand to \[3,4\]: axis -2 has sizes 2 and 3/],
  ["Reduce axis", ({ b, c }) => b.reduceSum(c, [2]), /^ReduceSum\(c: float32\[2,4\], .*\): axis 2 is out of range for rank 2$/],
  ["Gather index dtype", ({ b, c, v }) => b.gather(c, v), /^Gather\(c: float32\[2,4\], v: float32\[3\]\): indices must be int32 or int64, got float32$/],
  ["GatherElements rank", ({ b, c }) => b.gatherElements(c, b.input("ix", "int64", [2]), 1),
    /^GatherElements\(.*\): data and indices must have the same rank, got 2 and 1$/],
  ["Slice step 0", ({ b, c }) => b.slice(c, [0], [1], [0], [0]), /^Slice\(c: float32\[2,4\], .*\): step must not be 0$/],
  ["Pad length", ({ b, c }) => b.pad(c, [1, 2]), /^Pad\(.*\): pads has 2 entries, expected 4 \(begin and end per axis\)$/],
  ["Cast target", ({ b, c }) => b.op("Cast", [c], { to: 99 }), /^Cast\(c: float32\[2,4\]\): attribute to = 99 is not a supported ONNX dtype code; expected one of 1 \(float32\)/],
  ["unknown op", ({ b, c }) => b.op("Frobnicate", [c]), /^Frobnicate\(c: float32\[2,4\]\): no shape rule for op Frobnicate; known ops: Abs, Add/],
  ["input name taken", ({ b }) => b.input("a", "float32", [1]), /^graph g: input name a is already used$/],
  ["output declared twice", ({ b, c }) => { b.output(c, "o"); b.output(c, "o"); }, /^graph g: output o is declared twice$/],
];

for (const [what, provoke, message] of ERRORS) {
  Deno.test(`GraphBuilder fails at build time with a readable message: ${what}`, () => {
    throws(() => provoke(fixture()), (e: Error) => {
      match(e.message, message);
      return true;
    });
  });
}

Deno.test("GraphBuilder infers symbolic shapes through a small model", () => {
  const b = new GraphBuilder("shapes");
  const x = b.input("x", "float32", ["batch", "time", 8]);
  const w = b.input("w", "float32", [8, 6]);
  const y = b.matmul(x, w);
  deepEqual(y.shape, ["batch", "time", 6]);
  const heads = b.transpose(b.reshape(y, [0, 0, 2, 3]), [0, 2, 1, 3]);
  deepEqual(heads.shape, ["batch", 2, "time", 3]);
  deepEqual(b.reduceMean(heads, [-1], false).shape, ["batch", 2, "time"]);
  deepEqual(b.add(y, b.input("bias", "float32", [1, 1, 6])).shape, ["batch", "time", 6]);
  deepEqual(b.reshape(y, [-1, 6]).shape.length, 2);
  deepEqual(b.slice(y, [1], [4], [2]).shape, ["batch", "time", 3]);
  deepEqual(b.split(y, [2, 4], -1).map((v: Value) => v.shape), [
    ["batch", "time", 2],
    ["batch", "time", 4],
  ]);
  deepEqual(b.concat([y, y], 1).shape.length, 3);
  deepEqual(b.pad(y, [0, 0, 1, 0, 0, 2]).shape, ["batch", "time", 9]);
  deepEqual(b.gatherND(w, b.input("pairs", "int64", [5, 2])).shape, [5]);
});

Deno.test("a built graph runs in ONNX Runtime and extends with GraphBuilder.from", async () => {
  const b = new GraphBuilder("affine");
  const x = b.input("x", "float32", ["batch", 2]);
  const w = b.input("w", "float32", [2, 2]);
  b.output(b.add(b.matmul(x, w), b.scalar(1)), "y");
  const more = GraphBuilder.from(b.build());
  more.output(more.pad(more.outputs[0], [0, 1, 0, 0]), "padded");
  const s = await ort.InferenceSession.create(serializeModel(more.build()), {
    intraOpNumThreads: 1,
  });
  const out = await s.run({
    x: new ort.Tensor("float32", Float32Array.of(1, 2), [1, 2]),
    w: new ort.Tensor("float32", Float32Array.of(1, 0, 0, 1), [2, 2]),
  });
  deepEqual(Array.from(out.y.data as Float32Array), [2, 3]);
  deepEqual(Array.from(out.padded.data as Float32Array), [0, 2, 3]);
  equal(out.padded.dims.length, 2);
  await s.release();
});
