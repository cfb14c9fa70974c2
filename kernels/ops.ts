/**
 * Shape and dtype inference for every ONNX op the engine emits: one table keyed by op type.
 *
 * Each rule gets the input values (their dtype, shape and, where known, constant content) and
 * the attributes, and returns the dtype and shape of each output. A rule throws `ShapeError` with a
 * readable message when the inputs cannot go together, so a wrong shape fails while the graph is
 * being built instead of inside ONNX Runtime.
 *
 * @module
 */

import type { Attr, Dim, DType, Shape, Value } from "./ir.ts";
import { formatShape, isStatic, ONNX_DTYPE } from "./ir.ts";

/** The dtype of an ONNX `TensorProto.DataType` code. */
export function dtypeOfCode(code: number): DType | undefined {
  return (Object.keys(ONNX_DTYPE) as DType[]).find((d) => ONNX_DTYPE[d] === code);
}

/** Output type of one op output. */
export interface OutType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/** An op's input values; null = an omitted optional input. */
export type Inputs = readonly (Value | null)[];

/** An op's attributes by name. */
export type Attrs = Readonly<Record<string, Attr>>;

/** Inference rule: inputs and attributes → output types. */
export type InferRule = (inputs: Inputs, attrs: Attrs) => OutType[];

/** Output shape of an op whose single output has the dtype of its first input. */
type ShapeRule = (op: string, inputs: Inputs, attrs: Attrs) => Shape;

/** A build-time error naming the op and the shapes involved. */
export class ShapeError extends Error {
  constructor(op: string, inputs: Inputs, why: string) {
    const shown = inputs.map((v) => (v ? `${v.name}: ${v.dtype}${formatShape(v.shape)}` : "∅"));
    super(`${op}(${shown.join(", ")}): ${why}`);
    this.name = "ShapeError";
  }
}

let unknownCounter = 0;
/** A fresh unknown dim, used when a size depends on run-time data. */
export function unknownDim(): string {
  return `?${unknownCounter++}`;
}

/** Broadcast two dims (numpy rules); returns undefined when they cannot broadcast. */
function broadcastDim(a: Dim, b: Dim): Dim | undefined {
  if (a === b) return a;
  if (a === 1) return b;
  if (b === 1) return a;
  if (isStatic(a) && isStatic(b)) return undefined;
  // A symbolic dim against a static one (≠ 1) must be that size at run time.
  if (isStatic(a)) return a;
  if (isStatic(b)) return b;
  return typeof a === "string" && a.startsWith("?") ? b : a;
}

/**
 * Say where shapes fail to broadcast, e.g. `axis -1 has sizes 3 and 4`; "" when they broadcast.
 * Axes are counted from the right, as numpy aligns them.
 */
export function broadcastConflict(...shapes: Shape[]): string {
  const rank = Math.max(...shapes.map((s) => s.length));
  for (let i = 1; i <= rank; i++) {
    const dims = shapes.flatMap((s) => (s.length >= i ? [s[s.length - i]] : []));
    let d: Dim = 1;
    for (const e of dims) {
      const next = broadcastDim(d, e);
      if (next === undefined) {
        return `axis -${i} has sizes ${d} and ${e} (numpy rules: equal, or one of them 1)`;
      }
      d = next;
    }
  }
  return "";
}

/** Numpy-style broadcast of several shapes, or undefined when they are incompatible. */
export function broadcastShapes(...shapes: Shape[]): Shape | undefined {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = i - (rank - s.length);
      if (k < 0) continue;
      const next = broadcastDim(d, s[k]);
      if (next === undefined) return undefined;
      d = next;
    }
    out.push(d);
  }
  return out;
}

/** Normalise a possibly negative axis against a rank. */
export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Integer content of a constant input (axes, shapes, starts…), or undefined when not constant. */
export function constInts(v: Value | null): number[] | undefined {
  if (!v?.constant) return undefined;
  return Array.from(v.constant.data as ArrayLike<number | bigint>, (x) => Number(x));
}

function attrInt(attrs: Attrs, name: string, dflt: number): number {
  const a = attrs[name];
  return a && a.kind === "int" ? a.value : dflt;
}

function attrInts(
  attrs: Attrs,
  name: string,
): readonly number[] | undefined {
  const a = attrs[name];
  return a && a.kind === "ints" ? a.value : undefined;
}

function need(v: Value | null, op: string, inputs: Inputs, what: string): Value {
  if (!v) throw new ShapeError(op, inputs, `missing required input ${what}`);
  return v;
}

// ----- rule families --------------------------------------------------------------------------

/** A rule with one output: the first input's dtype and the shape `shape` gives. */
const firstDtype = (op: string, shape: ShapeRule): InferRule => (inputs, attrs) => [
  { dtype: inputs[0]!.dtype, shape: shape(op, inputs, attrs) },
];

const sameAsFirst = (op: string): InferRule => (inputs) => {
  const x = need(inputs[0], op, inputs, "X");
  return [{ dtype: x.dtype, shape: x.shape }];
};

const broadcastOp = (op: string, outDtype?: DType): InferRule => (inputs) => {
  const present = inputs.filter((v): v is Value => v !== null);
  const dtype0 = present[0].dtype;
  const sameTypeInputs = op === "Where" ? present.slice(1) : op === "Pow" ? [] : present;
  for (const v of sameTypeInputs) {
    if (v.dtype !== sameTypeInputs[0].dtype) {
      throw new ShapeError(
        op,
        inputs,
        `inputs must share one dtype, got ${v.dtype} and ${sameTypeInputs[0].dtype}`,
      );
    }
  }
  if (op === "Where" && present[0].dtype !== "bool") {
    throw new ShapeError(op, inputs, `condition must be bool, got ${present[0].dtype}`);
  }
  const shape = broadcastShapes(...present.map((v) => v.shape));
  if (!shape) {
    const why = broadcastConflict(...present.map((v) => v.shape));
    throw new ShapeError(op, inputs, `shapes do not broadcast: ${why}`);
  }
  const dtype = outDtype ?? (op === "Where" ? present[1].dtype : dtype0);
  return [{ dtype, shape }];
};

const reduceOp = (op: string): InferRule => (inputs, attrs) => {
  const x = need(inputs[0], op, inputs, "data");
  const keep = attrInt(attrs, "keepdims", 1) === 1;
  const axesIn = inputs[1] ?? null;
  const axes = axesIn ? constInts(axesIn) : x.shape.map((_, i) => i);
  if (!axes) throw new ShapeError(op, inputs, "axes must be a constant");
  const norm = new Set(axes.map((a) => normAxis(a, x.shape.length)));
  for (const a of norm) {
    if (a < 0 || a >= x.shape.length) {
      throw new ShapeError(op, inputs, `axis ${a} is out of range for rank ${x.shape.length}`);
    }
  }
  const shape = x.shape.flatMap((d, i) => (norm.has(i) ? (keep ? [1] : []) : [d]));
  const dtype = op === "ArgMax" ? "int64" : x.dtype;
  return [{ dtype, shape }];
};

function matmulShape(op: string, inputs: Inputs): Shape {
  const a = need(inputs[0], op, inputs, "A");
  const b = need(inputs[1], op, inputs, "B");
  if (a.shape.length < 1 || b.shape.length < 1) {
    throw new ShapeError(op, inputs, "operands must have rank ≥ 1");
  }
  const as = a.shape.length === 1 ? [1, a.shape[0]] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0], 1] : b.shape;
  const k1 = as[as.length - 1];
  const k2 = bs[bs.length - 2];
  if (broadcastDim(k1, k2) === undefined || (isStatic(k1) && isStatic(k2) && k1 !== k2)) {
    throw new ShapeError(
      op,
      inputs,
      `inner dims differ: A's last dim is ${k1}, B's second-to-last is ${k2} (expected equal)`,
    );
  }
  const batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
  if (!batch) {
    const why = broadcastConflict(as.slice(0, -2), bs.slice(0, -2));
    throw new ShapeError(op, inputs, `batch dims do not broadcast: ${why}`);
  }
  const out: Dim[] = [...batch];
  if (a.shape.length > 1) out.push(as[as.length - 2]);
  if (b.shape.length > 1) out.push(bs[bs.length - 1]);
  return out;
}

function reshapeShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "data");
  const target = constInts(inputs[1]);
  if (!target) {
    // Run-time shape: the rank is the length of the shape input when that is static.
    const n = inputs[1]?.shape[0];
    return Array.from({ length: isStatic(n ?? "?") ? n as number : 1 }, unknownDim);
  }
  const out: Dim[] = target.map((t, i) => (t === 0 ? x.shape[i] : t));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = out.filter((_, i) => i !== minus);
    const total = x.shape.every(isStatic)
      ? (x.shape as number[]).reduce((p, d) => p * d, 1)
      : undefined;
    const rest = known.every(isStatic) ? (known as number[]).reduce((p, d) => p * d, 1) : undefined;
    if (total !== undefined && rest !== undefined) {
      if (rest === 0 || total % rest !== 0) {
        throw new ShapeError(
          op,
          inputs,
          `cannot reshape ${total} elements into ${formatShape(target)}`,
        );
      }
      out[minus] = total / rest;
    } else {
      out[minus] = reshapeSymbolic(x.shape, known) ?? unknownDim();
    }
  } else if (x.shape.every(isStatic) && out.every(isStatic)) {
    const a = (x.shape as number[]).reduce((p, d) => p * d, 1);
    const b = (out as number[]).reduce((p, d) => p * d, 1);
    if (a !== b) {
      throw new ShapeError(op, inputs, `cannot reshape ${a} elements into ${formatShape(out)}`);
    }
  }
  return out;
}

/** The -1 of a reshape when the input's symbolic dims all carry over: the leftover static part. */
function reshapeSymbolic(from: Shape, known: Dim[]): Dim | undefined {
  const symFrom = from.filter((d) => !isStatic(d));
  const symKnown = known.filter((d) => !isStatic(d));
  const staticFrom = from.filter(isStatic).reduce((p, d) => p * d, 1);
  const staticKnown = known.filter(isStatic).reduce((p, d) => p * d, 1);
  const leftover = symFrom.filter((d) => !symKnown.includes(d));
  if (symKnown.some((d) => !symFrom.includes(d))) return undefined;
  if (leftover.length === 0 && staticFrom % staticKnown === 0) return staticFrom / staticKnown;
  if (leftover.length === 1 && staticFrom === staticKnown) return leftover[0];
  return undefined;
}

function sliceShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "data");
  const starts = constInts(inputs[1]);
  const ends = constInts(inputs[2]);
  const axes = inputs[3] ? constInts(inputs[3]) : starts?.map((_, i) => i);
  const steps = inputs[4] ? constInts(inputs[4]) : starts?.map(() => 1);
  if (!starts || !ends || !axes || !steps) return x.shape.map(() => unknownDim());
  const out = [...x.shape];
  axes.forEach((axis0, i) => {
    const axis = normAxis(axis0, x.shape.length);
    const d = x.shape[axis];
    const step = steps[i];
    if (step === 0) throw new ShapeError(op, inputs, "step must not be 0");
    if (!isStatic(d)) {
      // Symbolic dim: only a full slice keeps it; otherwise static when start/end both non-negative.
      const full = starts[i] === 0 && ends[i] >= 2 ** 31 - 1 && step === 1;
      out[axis] = full
        ? d
        : starts[i] >= 0 && ends[i] >= 0 && ends[i] < 2 ** 31 - 1
        ? Math.max(0, Math.ceil((ends[i] - starts[i]) / step))
        : unknownDim();
      return;
    }
    const clampIdx = (v: number, lo: number, hi: number) =>
      Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const s = step > 0 ? clampIdx(starts[i], 0, d) : clampIdx(starts[i], -1, d - 1);
    const e = step > 0 ? clampIdx(ends[i], 0, d) : clampIdx(ends[i], -1, d - 1);
    out[axis] = Math.max(0, Math.ceil((e - s) / step));
  });
  return out;
}

function gatherShape(op: string, inputs: Inputs, attrs: Attrs): Shape {
  const data = need(inputs[0], op, inputs, "data");
  const idx = need(inputs[1], op, inputs, "indices");
  if (idx.dtype !== "int64" && idx.dtype !== "int32") {
    throw new ShapeError(op, inputs, `indices must be int32 or int64, got ${idx.dtype}`);
  }
  const axis = normAxis(attrInt(attrs, "axis", 0), data.shape.length);
  return [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)];
}

function concatShape(op: string, inputs: Inputs, attrs: Attrs): Shape {
  const xs = inputs.filter((v): v is Value => v !== null);
  if (xs.length === 0) throw new ShapeError(op, inputs, "needs at least one input");
  const rank = xs[0].shape.length;
  const axis = normAxis(attrInt(attrs, "axis", 0), rank);
  if (axis < 0 || axis >= rank) {
    throw new ShapeError(
      op,
      inputs,
      `axis ${attrInt(attrs, "axis", 0)} is out of range for rank ${rank}`,
    );
  }
  let total: Dim = 0;
  for (const v of xs) {
    if (v.shape.length !== rank) {
      throw new ShapeError(
        op,
        inputs,
        `inputs must have the same rank, got ${v.shape.length} and ${rank}`,
      );
    }
    if (v.dtype !== xs[0].dtype) throw new ShapeError(op, inputs, "inputs must share one dtype");
    v.shape.forEach((d, i) => {
      if (i !== axis && isStatic(d) && isStatic(xs[0].shape[i]) && d !== xs[0].shape[i]) {
        throw new ShapeError(
          op,
          inputs,
          `dim ${i} differs: ${xs[0].name} has ${xs[0].shape[i]}, ${v.name} has ${d} ` +
            `(all dims but axis ${axis} must match)`,
        );
      }
    });
    const d = v.shape[axis];
    total = isStatic(total) && isStatic(d) ? total + d : unknownDim();
  }
  const out = [...xs[0].shape];
  out[axis] = total;
  return out;
}

function expandShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "input");
  const target = constInts(inputs[1]);
  if (!target) {
    const n = inputs[1]?.shape[0];
    const rank = Math.max(x.shape.length, isStatic(n ?? "?") ? n as number : 0);
    return Array.from({ length: rank }, unknownDim);
  }
  const shape = broadcastShapes(x.shape, target);
  if (!shape) {
    const why = broadcastConflict(x.shape, target);
    throw new ShapeError(op, inputs, `cannot expand to ${formatShape(target)}: ${why}`);
  }
  return shape;
}

function unsqueezeShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "data");
  const axes = constInts(inputs[1]);
  if (!axes) throw new ShapeError(op, inputs, "axes must be a constant");
  const rank = x.shape.length + axes.length;
  const norm = new Set(axes.map((a) => normAxis(a, rank)));
  if (norm.size !== axes.length || [...norm].some((a) => a < 0 || a >= rank)) {
    throw new ShapeError(
      op,
      inputs,
      `axes ${formatShape(axes)} must be distinct and within output rank ${rank}`,
    );
  }
  const out: Dim[] = [];
  let k = 0;
  for (let i = 0; i < rank; i++) out.push(norm.has(i) ? 1 : x.shape[k++]);
  return out;
}

function squeezeShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "data");
  const axes = inputs[1] ? constInts(inputs[1]) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
  if (!axes) throw new ShapeError(op, inputs, "axes must be a constant");
  const norm = new Set(axes.map((a) => normAxis(a, x.shape.length)));
  for (const a of norm) {
    const d = x.shape[a];
    if (isStatic(d) && d !== 1) throw new ShapeError(op, inputs, `axis ${a} has size ${d}, not 1`);
  }
  return x.shape.filter((_, i) => !norm.has(i));
}

function splitShapes(op: string, inputs: Inputs, attrs: Attrs): OutType[] {
  const x = need(inputs[0], op, inputs, "input");
  const axis = normAxis(attrInt(attrs, "axis", 0), x.shape.length);
  const sizes = constInts(inputs[1] ?? null);
  const d = x.shape[axis];
  let parts: Dim[];
  if (sizes) {
    if (isStatic(d) && sizes.reduce((a, b) => a + b, 0) !== d) {
      throw new ShapeError(op, inputs, `split sizes ${formatShape(sizes)} do not add up to ${d}`);
    }
    parts = sizes;
  } else {
    const n = attrInt(attrs, "num_outputs", 0);
    if (n <= 0) throw new ShapeError(op, inputs, "need a split input or num_outputs");
    if (isStatic(d) && d % n !== 0) {
      throw new ShapeError(op, inputs, `size ${d} is not divisible by ${n}`);
    }
    parts = Array.from({ length: n }, () => (isStatic(d) ? d / n : unknownDim()));
  }
  return parts.map((p) => ({
    dtype: x.dtype,
    shape: x.shape.map((dd, i) => (i === axis ? p : dd)),
  }));
}

function padShape(op: string, inputs: Inputs): Shape {
  const x = need(inputs[0], op, inputs, "data");
  const pads = constInts(inputs[1]);
  const rank = x.shape.length;
  const axes = inputs[3] ? constInts(inputs[3])?.map((a) => normAxis(a, rank)) : undefined;
  const padded = axes ?? x.shape.map((_, i) => i);
  if (!pads) return x.shape.map((d, i) => (padded.includes(i) ? unknownDim() : d));
  if (pads.length !== 2 * padded.length) {
    throw new ShapeError(
      op,
      inputs,
      `pads has ${pads.length} entries, expected ${2 * padded.length} (begin and end per axis)`,
    );
  }
  const out = [...x.shape];
  padded.forEach((axis, i) => {
    const d = x.shape[axis];
    const extra = pads[i] + pads[i + padded.length];
    out[axis] = extra === 0 ? d : isStatic(d) ? d + extra : unknownDim();
  });
  return out;
}

function gatherNDShape(op: string, inputs: Inputs, attrs: Attrs): Shape {
  const data = need(inputs[0], op, inputs, "data");
  const idx = need(inputs[1], op, inputs, "indices");
  if (attrInt(attrs, "batch_dims", 0) !== 0) {
    throw new ShapeError(op, inputs, "only batch_dims = 0 is supported");
  }
  const k = idx.shape[idx.shape.length - 1];
  if (!isStatic(k) || k > data.shape.length) {
    throw new ShapeError(
      op,
      inputs,
      `last dim of indices must be static and ≤ rank ${data.shape.length}, got ${k}`,
    );
  }
  return [...idx.shape.slice(0, -1), ...data.shape.slice(k)];
}

function gemmShape(op: string, inputs: Inputs, attrs: Attrs): Shape {
  const a = need(inputs[0], op, inputs, "A");
  const b = need(inputs[1], op, inputs, "B");
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new ShapeError(op, inputs, "A and B must be 2-D");
  }
  const [m, ka] = attrInt(attrs, "transA", 0) ? [a.shape[1], a.shape[0]] : a.shape;
  const [kb, n] = attrInt(attrs, "transB", 0) ? [b.shape[1], b.shape[0]] : b.shape;
  if (isStatic(ka) && isStatic(kb) && ka !== kb) {
    throw new ShapeError(
      op,
      inputs,
      `inner dims differ: op(A) is ${formatShape([m, ka])}, op(B) is ${formatShape([kb, n])} ` +
        `(transA=${attrInt(attrs, "transA", 0)}, transB=${attrInt(attrs, "transB", 0)})`,
    );
  }
  const c = inputs[2];
  if (c && !broadcastShapes([m, n], c.shape)) {
    throw new ShapeError(op, inputs, "C does not broadcast to [M,N]");
  }
  return [m, n];
}

// ----- the table ------------------------------------------------------------------------------

const UNARY = [
  "Neg",
  "Sqrt",
  "Reciprocal",
  "Exp",
  "Log",
  "Tanh",
  "Sigmoid",
  "Erf",
  "Gelu",
  "Abs",
  "Relu",
  "Identity",
  "Softmax",
  "LogSoftmax",
  "Sin",
  "Cos",
  "Floor",
  "Not",
  "CumSum",
  "Trilu",
  "Clip",
  "Ceil",
  "Round",
  "Sign",
] as const;
const BINARY = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"] as const;
const COMPARE = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or"] as const;
const REDUCE = [
  "ReduceSum",
  "ReduceMean",
  "ReduceMax",
  "ReduceMin",
  "ReduceLogSumExp",
  "ReduceSumSquare",
] as const;

/** Inference rules keyed by op type (default ONNX domain). */
export const INFER: Readonly<Record<string, InferRule>> = {
  ...Object.fromEntries(UNARY.map((op) => [op, sameAsFirst(op)])),
  ...Object.fromEntries(BINARY.map((op) => [op, broadcastOp(op)])),
  ...Object.fromEntries(COMPARE.map((op) => [op, broadcastOp(op, "bool")])),
  ...Object.fromEntries(REDUCE.map((op) => [op, reduceOp(op)])),
  Where: broadcastOp("Where"),
  ArgMax: (inputs, attrs) => {
    const x = need(inputs[0], "ArgMax", inputs, "data");
    const axis = normAxis(attrInt(attrs, "axis", 0), x.shape.length);
    const keep = attrInt(attrs, "keepdims", 1) === 1;
    return [{
      dtype: "int64",
      shape: x.shape.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d])),
    }];
  },
  Cast: (inputs, attrs) => {
    const x = need(inputs[0], "Cast", inputs, "input");
    const to = attrs.to;
    const dtype = to && to.kind === "int" ? dtypeOfCode(to.value) : undefined;
    if (!dtype) {
      throw new ShapeError(
        "Cast",
        inputs,
        `attribute to = ${to?.value} is not a supported ONNX dtype code; expected one of ${
          Object.entries(ONNX_DTYPE).map(([k, v]) => `${v} (${k})`).join(", ")
        }`,
      );
    }
    return [{ dtype, shape: x.shape }];
  },
  MatMul: firstDtype("MatMul", matmulShape),
  Gemm: firstDtype("Gemm", gemmShape),
  Reshape: firstDtype("Reshape", reshapeShape),
  Transpose: (inputs, attrs) => {
    const x = need(inputs[0], "Transpose", inputs, "data");
    const perm = attrInts(attrs, "perm") ?? x.shape.map((_, i) => x.shape.length - 1 - i);
    const rank = x.shape.length;
    const inRange = perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank);
    if (perm.length !== rank || new Set(perm).size !== perm.length || !inRange) {
      throw new ShapeError(
        "Transpose",
        inputs,
        `perm ${formatShape(perm)} is not a permutation of rank ${rank}; expected each of ` +
          `0..${rank - 1} once`,
      );
    }
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  Slice: firstDtype("Slice", sliceShape),
  Concat: firstDtype("Concat", concatShape),
  Split: (inputs, attrs) => splitShapes("Split", inputs, attrs),
  Expand: firstDtype("Expand", expandShape),
  Unsqueeze: firstDtype("Unsqueeze", unsqueezeShape),
  Squeeze: firstDtype("Squeeze", squeezeShape),
  Gather: firstDtype("Gather", gatherShape),
  GatherElements: (inputs) => {
    const [data, idx] = [
      need(inputs[0], "GatherElements", inputs, "data"),
      need(inputs[1], "GatherElements", inputs, "indices"),
    ];
    if (data.shape.length !== idx.shape.length) {
      throw new ShapeError(
        "GatherElements",
        inputs,
        `data and indices must have the same rank, got ${data.shape.length} and ${idx.shape.length}`,
      );
    }
    return [{ dtype: data.dtype, shape: idx.shape }];
  },
  GatherND: firstDtype("GatherND", gatherNDShape),
  Pad: firstDtype("Pad", padShape),
  ScatterElements: sameAsFirst("ScatterElements"),
  ScatterND: sameAsFirst("ScatterND"),
  Shape: (
    inputs,
  ) => [{ dtype: "int64", shape: [need(inputs[0], "Shape", inputs, "data").shape.length] }],
  Size: () => [{ dtype: "int64", shape: [] }],
  ConstantOfShape: (inputs, attrs) => {
    const dims = constInts(inputs[0]);
    const v = attrs.value;
    const dtype: DType = v && v.kind === "tensor" ? v.value.dtype : "float32";
    const rank = inputs[0]?.shape[0];
    const shape = dims ??
      Array.from({ length: isStatic(rank ?? "?") ? rank as number : 0 }, unknownDim);
    return [{ dtype, shape }];
  },
  TopK: (inputs, attrs) => {
    const x = need(inputs[0], "TopK", inputs, "X");
    const k = constInts(inputs[1])?.[0] ?? unknownDim();
    const axis = normAxis(attrInt(attrs, "axis", -1), x.shape.length);
    const shape = x.shape.map((d, i) => (i === axis ? k : d));
    return [{ dtype: x.dtype, shape }, { dtype: "int64", shape }];
  },
  Range: (inputs) => {
    const [s, l, d] = [constInts(inputs[0]), constInts(inputs[1]), constInts(inputs[2])];
    const n = s && l && d ? Math.max(0, Math.ceil((l[0] - s[0]) / d[0])) : unknownDim();
    return [{ dtype: inputs[0]!.dtype, shape: [n] }];
  },
};

/** Infer output types, failing with a readable message for an unknown op. */
export function inferOutputs(op: string, inputs: Inputs, attrs: Attrs): OutType[] {
  const rule = INFER[op];
  if (!rule) {
    throw new ShapeError(
      op,
      inputs,
      `no shape rule for op ${op}; known ops: ${Object.keys(INFER).sort().join(", ")}`,
    );
  }
  return rule(inputs, attrs);
}
