/**
 * Gradient rules of the shape and indexing ops. Shape ops are linear: the gradient is moved back
 * by the inverse op (Reshape back, inverse Transpose, Squeeze ↔ Unsqueeze, Slice ↔ Pad,
 * Concat ↔ Split). Gathers scatter-add the gradient into zeros, which accumulates repeated
 * indices (an embedding row used twice gets both gradients); the scatters are WebGPU-safe
 * with `reduction = "add"` (kernels/README.md §2).
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Value } from "./ir.ts";
import { isStatic } from "./ir.ts";
import type { GradContext, GradRule } from "./_grad_util.ts";
import {
  attrInt,
  attrInts,
  attrString,
  constInput,
  each,
  inp,
  invertPerm,
  out,
  reshapeLike,
  rule,
  unbroadcast,
  zerosLike,
} from "./_grad_util.ts";
import { normAxis } from "./ops.ts";

/** Slice ends at or beyond this count as "to the end" (ONNX uses INT_MAX or INT64_MAX). */
const TO_END = 2 ** 31 - 1;

/** int64 indices, as ScatterND/Gather gradients need them (int32 ids are cast). */
function int64(b: GraphBuilder, idx: Value): Value {
  return b.cast(idx, "int64");
}

/** Positions of x (along one axis of static size d) picked by a Slice, in output order. */
function slicePositions(d: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number) =>
    Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
  const [s, e] = step > 0
    ? [clamp(start, 0, d), clamp(end, 0, d)]
    : [clamp(start, -1, d - 1), clamp(end, -1, d - 1)];
  const picked: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) picked.push(i);
  return picked;
}

/**
 * One pad amount of a Slice gradient on a symbolic axis: `d + offset` computed from Shape(x)
 * at run time. This int64 arithmetic runs on the CPU under WebGPU; it is used only when a
 * symbolic axis is sliced from or up to an offset from its end.
 */
function runtimePad(b: GraphBuilder, x: Value, axis: number, offset: number): Value {
  const d = b.gather(b.shape(x), b.ints([axis]));
  return b.add(d, b.ints([offset]));
}

/**
 * Slice: dx is g placed back into zeros. Step-1 axes become one Pad; other steps use a Gather
 * with a static index map over g padded by one zero slot (each x position points at its slice
 * position, or at the zero slot); a slice that keeps every position (a reversal) needs no slot.
 */
function sliceGrad(c: GradContext, g0: Value): Value {
  const b = c.b;
  const x = inp(c, 0);
  const rank = x.shape.length;
  const starts = constInput(c.node, 1, "starts");
  const ends = constInput(c.node, 2, "ends");
  const axes = c.node.inputs[3] ? constInput(c.node, 3, "axes") : starts.map((_, i) => i);
  const steps = c.node.inputs[4] ? constInput(c.node, 4, "steps") : starts.map(() => 1);
  const before: (number | Value)[] = x.shape.map(() => 0);
  const after: (number | Value)[] = x.shape.map(() => 0);
  let g = g0;
  axes.forEach((axis0, i) => {
    const axis = normAxis(axis0, rank);
    const d = x.shape[axis];
    const [start, end, step] = [starts[i], ends[i], steps[i]];
    if (isStatic(d) && step !== 1) {
      const picked = slicePositions(d, start, end, step);
      const slot = picked.length;
      const map = Array.from(
        { length: d },
        (_, j) => (picked.includes(j) ? picked.indexOf(j) : slot),
      );
      if (slot === d) {
        g = b.gather(g, b.ints(map), axis); // a permutation (e.g. a reversal): no zero slot
      } else {
        const pads = x.shape.map(() => 0).concat(x.shape.map((_, j) => (j === axis ? 1 : 0)));
        g = b.gather(b.pad(g, pads), b.ints(map), axis);
      }
    } else if (isStatic(d)) {
      const picked = slicePositions(d, start, end, 1);
      const s = picked.length ? picked[0] : 0;
      before[axis] = s;
      after[axis] = d - s - picked.length;
    } else if (step !== 1) {
      throw new Error(
        `gradient of Slice: step ${step} on symbolic axis ${axis} (${d}) of ${x.name}; ` +
          "expected step 1 or a static axis",
      );
    } else {
      before[axis] = start >= 0 ? start : runtimePad(b, x, axis, start);
      after[axis] = end >= TO_END ? 0 : end < 0 ? -end : runtimePad(b, x, axis, -end);
    }
  });
  const pads = [...before, ...after];
  if (pads.every((p) => p === 0)) return g;
  if (pads.every((p) => typeof p === "number")) return b.pad(g, pads as number[]);
  const parts = pads.map((p) => (typeof p === "number" ? b.ints([p]) : p));
  return b.pad(g, b.concat(parts, 0));
}

/**
 * Concat: each input's gradient is its piece of g along the axis. One Split when every piece is
 * needed and static; otherwise one Slice per needed piece (offsets counted from the start before
 * a symbolic piece and from the end after it, so one symbolic size is allowed).
 */
function concatGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const g = c.dy[0]!;
  const rank = out(c).shape.length;
  const axis = normAxis(attrInt(c.node, "axis", 0), rank);
  const sizes = c.node.inputs.map((x) => x!.shape[axis]);
  if (sizes.length === 1) return [g];
  if (sizes.every(isStatic) && c.needs.every((n) => n)) {
    return b.split(g, sizes as number[], axis);
  }
  const symbolic = sizes.flatMap((d, i) => (isStatic(d) ? [] : [i]));
  if (symbolic.length > 1) {
    throw new Error(
      `gradient of Concat: inputs ${symbolic.join(", ")} have symbolic sizes [${
        sizes.join(",")
      }] along axis ${axis}; expected at most one`,
    );
  }
  const sym = symbolic[0] ?? sizes.length;
  const sum = (from: number, to: number) =>
    (sizes.slice(from, to) as number[]).reduce((p, d) => p + d, 0);
  return sizes.map((_, i) => {
    if (!c.needs[i]) return null;
    if (i < sym) return b.slice(g, [sum(0, i)], [sum(0, i + 1)], [axis]);
    if (i > sym) {
      const end = -sum(i + 1, sizes.length);
      return b.slice(g, [-sum(i, sizes.length)], [end === 0 ? TO_END : end], [axis]);
    }
    const tail = sum(i + 1, sizes.length);
    return b.slice(g, [sum(0, i)], [tail === 0 ? TO_END : -tail], [axis]);
  });
}

/** Split: dx = Concat of the output gradients, zeros for outputs no gradient reached. */
function splitGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const axis = normAxis(attrInt(c.node, "axis", 0), inp(c, 0).shape.length);
  const parts = c.node.outputs.map((y, i) => c.dy[i] ?? zerosLike(b, y));
  return c.node.inputs.map((_, i) =>
    i === 0 && c.needs[0] ? (parts.length === 1 ? parts[0] : b.concat(parts, axis)) : null
  );
}

/**
 * Gather(data, idx, axis): out = data[:a] + idx.shape + data[a+1:]. Its gradient scatter-adds g
 * into zeros shaped like data. On axis 0 (embeddings) that is one ScatterND with idx[..., 1]
 * and g as the updates; another axis is moved to the front and back with Transposes.
 *
 * ScatterND takes int64 indices only, and the WebGPU EP cannot reshape an int64 tensor, so int32
 * indices get their trailing axis before the Cast and the whole rule stays on the GPU. int64
 * indices need an int64 Unsqueeze, which runs on the CPU under WebGPU: gather with int32 indices
 * there (the engine's token ids are int32).
 */
function gatherGrad(c: GradContext, g: Value): Value {
  const b = c.b;
  const [data, idx] = [inp(c, 0), inp(c, 1)];
  const axis = normAxis(attrInt(c.node, "axis", 0), data.shape.length);
  const where = int64(b, b.unsqueeze(idx, [-1])); // [...idx, 1]
  if (axis === 0) return b.scatterND(zerosLike(b, data), where, g, "add");
  const front = [axis, ...data.shape.map((_, i) => i).filter((i) => i !== axis)];
  const r = idx.shape.length;
  const gFront = [
    ...Array.from({ length: r }, (_, i) => axis + i),
    ...Array.from({ length: axis }, (_, i) => i),
    ...Array.from({ length: data.shape.length - axis - 1 }, (_, i) => axis + r + i),
  ];
  const zeros = b.transpose(zerosLike(b, data), front);
  const moved = b.scatterND(zeros, where, b.transpose(g, gFront), "add");
  return b.transpose(moved, invertPerm(front));
}

/**
 * ScatterND / ScatterElements (reduction none or add): the updates' gradient is g gathered at
 * the indices; data's gradient is g, with the overwritten positions zeroed when reduction is
 * none.
 */
function scatterGrads(
  gatherOp: "GatherND" | "GatherElements",
): (c: GradContext) => (Value | null)[] {
  return (c) => {
    const b = c.b;
    const reduction = attrString(c.node, "reduction", "none");
    if (reduction !== "none" && reduction !== "add") {
      throw new Error(
        `gradient of ${c.node.op}: reduction ${reduction} has no rule; expected none or add`,
      );
    }
    const [idx, upd] = [inp(c, 1), inp(c, 2)];
    const attrs: Record<string, number> = gatherOp === "GatherElements"
      ? { axis: attrInt(c.node, "axis", 0) }
      : {};
    return each(
      c,
      (g) => reduction === "add" ? g : b.op1(c.node.op, [g, idx, zerosLike(b, upd)], c.node.attrs),
      null,
      (g) => b.op1(gatherOp, [g, idx], attrs),
    );
  };
}

/** Gradient rules of the shape and indexing ops, keyed by ONNX op type. */
export const SHAPE_RULES: Readonly<Record<string, GradRule>> = {
  // Reshape back to x's shape (constant target where static, else Shape(x)).
  Reshape: rule("linear", (c) => each(c, (g) => reshapeLike(c.b, g, out(c).shape, inp(c, 0)))),
  // Transpose by the inverse permutation (default perm reverses the axes).
  Transpose: rule("linear", (c) =>
    each(c, (g) => {
      const rank = inp(c, 0).shape.length;
      const perm = attrInts(c.node, "perm") ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
      return c.b.transpose(g, invertPerm(perm));
    })),
  // Unsqueeze(axes) ↔ Squeeze(axes), axes counted in the output's rank.
  Unsqueeze: rule("linear", (c) =>
    each(c, (g) => {
      const rank = out(c).shape.length;
      return c.b.squeeze(g, constInput(c.node, 1, "axes").map((a) => normAxis(a, rank)));
    })),
  // Squeeze(axes) ↔ Unsqueeze(axes); without axes, reshape back.
  Squeeze: rule("linear", (c) =>
    each(c, (g) => {
      const x = inp(c, 0);
      if (!c.node.inputs[1]) return reshapeLike(c.b, g, out(c).shape, x);
      const axes = constInput(c.node, 1, "axes").map((a) => normAxis(a, x.shape.length));
      return c.b.unsqueeze(g, axes);
    })),
  // Expand: sum g over the expanded axes.
  Expand: rule(
    "linear",
    (c) => each(c, (g) => unbroadcast(c.b, g, out(c).shape, inp(c, 0).shape)),
  ),
  Slice: rule("linear", (c) => each(c, (g) => sliceGrad(c, g))),
  // Pad (constant mode) ↔ Slice: cut the padding off again.
  Pad: rule("linear", (c) =>
    each(c, (g) => {
      const mode = attrString(c.node, "mode", "constant");
      if (mode !== "constant") {
        throw new Error(`gradient of Pad: mode ${mode} has no rule; expected constant`);
      }
      const x = inp(c, 0);
      const rank = x.shape.length;
      const axes = c.node.inputs[3]
        ? constInput(c.node, 3, "axes").map((a) => normAxis(a, rank))
        : x.shape.map((_, i) => i);
      const pads = constInput(c.node, 1, "pads");
      const ends = axes.map((
        _,
        i,
      ) => (pads[axes.length + i] === 0 ? TO_END : -pads[axes.length + i]));
      return c.b.slice(g, axes.map((_, i) => pads[i]), ends, axes);
    })),
  Concat: rule("linear", concatGrads),
  Split: rule("linear", splitGrads),
  // Trilu: the same triangle of g.
  Trilu: rule(
    "linear",
    (c) => each(c, (g) => c.b.op1("Trilu", [g, c.node.inputs[1] ?? null], c.node.attrs)),
  ),
  Gather: rule("linear", (c) => each(c, (g) => gatherGrad(c, g))),
  // GatherElements: scatter-add g into zeros along the same axis.
  GatherElements: rule("linear", (c) =>
    each(c, (g) =>
      c.b.scatterElements(
        zerosLike(c.b, inp(c, 0)),
        inp(c, 1),
        g,
        attrInt(c.node, "axis", 0),
        "add",
      ))),
  // GatherND: scatter-add g into zeros at the same index tuples.
  GatherND: rule(
    "linear",
    (c) =>
      each(c, (g) => c.b.scatterND(zerosLike(c.b, inp(c, 0)), int64(c.b, inp(c, 1)), g, "add")),
  ),
  ScatterND: rule("linear", scatterGrads("GatherND")),
  ScatterElements: rule("linear", scatterGrads("GatherElements")),
  // TopK values: scatter-add g into zeros at the chosen indices (the indices output has none).
  TopK: rule("linear", (c) => {
    const g = c.dy[0];
    const x = inp(c, 0);
    const axis = normAxis(attrInt(c.node, "axis", -1), x.shape.length);
    return c.node.inputs.map((_, i) =>
      i === 0 && c.needs[0] && g
        ? c.b.scatterElements(zerosLike(c.b, x), out(c, 1), g, axis, "add")
        : null
    );
  }),
};
