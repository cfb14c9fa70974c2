/**
 * The vocabulary shared by the gradient rules: the rule types, the context a rule receives, and
 * the small graph pieces most rules need (undo broadcasting, zeros, reshape back, scalars).
 *
 * Every helper emits only WebGPU-safe ops (kernels/README.md §2): ReduceSum, Squeeze,
 * Reshape, Expand, Shape, Slice. Shapes are taken from the forward values, never from the
 * gradients (a gradient has its forward value's shape by contract, even where inference on the
 * gradient's own nodes lost a symbolic name).
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Attr, Dim, DType, Node, Shape, Value } from "./ir.ts";
import { isStatic } from "./ir.ts";
import { constInts, normAxis } from "./ops.ts";

/**
 * What kind of op a rule differentiates (the verbs of JAX's `ad.py`):
 * - `linear`: the input gradients are linear in the output gradients alone (Add, Reshape, Neg);
 * - `uses-input`: the rule reads forward inputs (Mul, MatMul, Log);
 * - `uses-output`: the rule reads the forward output (Exp, Tanh, Sqrt, Softmax);
 * - `zero`: piecewise constant in its float inputs; no gradient flows (Floor, Equal, ArgMax);
 * - `non-differentiable`: integer or bool data only; no gradient is defined (Not, Range, Shape).
 */
export type GradKind = "linear" | "uses-input" | "uses-output" | "zero" | "non-differentiable";

/** What a rule is given: the builder to emit into, the forward node and its output gradients. */
export interface GradContext {
  /** Emits the backward nodes. */
  readonly b: GraphBuilder;
  /** The forward node: `node.inputs` and `node.outputs` are the forward values. */
  readonly node: Node;
  /** One gradient per forward output; `null` where no gradient reaches that output. */
  readonly dy: readonly (Value | null)[];
  /** One flag per forward input: emit its gradient only where true. */
  readonly needs: readonly boolean[];
  /**
   * The forward node that produced a value (undefined for graph inputs and initializers), for
   * rules that differentiate a small pattern at once (Mul(x, Sigmoid(x)), SiLU).
   */
  readonly producer?: (v: Value) => Node | undefined;
}

/** A gradient rule: one gradient per forward input, `null` where none is needed or defined. */
export type GradFn = (c: GradContext) => (Value | null)[];

/** A table entry: the op's kind and, for differentiable kinds, its rule. */
export interface GradRule {
  readonly kind: GradKind;
  readonly grad?: GradFn;
}

/** Register a differentiable op. */
export function rule(kind: "linear" | "uses-input" | "uses-output", grad: GradFn): GradRule {
  return { kind, grad };
}

/**
 * Build the per-input result: input i gets `fns[i]()` when its gradient is needed, else null.
 * Inputs beyond `fns` (axes, shapes, indices) get null.
 */
export function each(
  c: GradContext,
  ...fns: (((g: Value) => Value | null) | null)[]
): (Value | null)[] {
  const g = c.dy[0]!;
  return c.node.inputs.map((_, i) => (c.needs[i] && fns[i] ? fns[i]!(g) : null));
}

/** Forward input i (rules only call this for inputs that are present). */
export function inp(c: GradContext, i: number): Value {
  return c.node.inputs[i]!;
}

/** Forward output i. */
export function out(c: GradContext, i = 0): Value {
  return c.node.outputs[i];
}

// ----- attributes ---------------------------------------------------------------------------

/** Integer attribute of the node, or `dflt`. */
export function attrInt(node: Node, name: string, dflt: number): number {
  const a: Attr | undefined = node.attrs[name];
  return a && a.kind === "int" ? a.value : dflt;
}

/** Float attribute of the node, or `dflt`. */
export function attrFloat(node: Node, name: string, dflt: number): number {
  const a = node.attrs[name];
  return a && (a.kind === "float" || a.kind === "int") ? a.value : dflt;
}

/** String attribute of the node, or `dflt`. */
export function attrString(node: Node, name: string, dflt: string): string {
  const a = node.attrs[name];
  return a && a.kind === "string" ? a.value : dflt;
}

/** Integer-list attribute of the node, or undefined. */
export function attrInts(node: Node, name: string): readonly number[] | undefined {
  const a = node.attrs[name];
  return a && a.kind === "ints" ? a.value : undefined;
}

/** Content of a constant int input (axes, starts…), failing with the op name when not constant. */
export function constInput(node: Node, i: number, what: string): number[] {
  const v = constInts(node.inputs[i] ?? null);
  if (!v) {
    throw new Error(
      `gradient of ${node.op}: input ${i} (${what}) must be a constant, got ${
        node.inputs[i]?.name ?? "nothing"
      }`,
    );
  }
  return v;
}

/** The normalised axes a Reduce* node reduces over (its axes input, or all axes). */
export function reduceAxes(node: Node): number[] {
  const x = node.inputs[0]!;
  const rank = x.shape.length;
  const axesIn = node.inputs[1] ?? null;
  const axes = axesIn ? constInput(node, 1, "axes") : [];
  if (axes.length === 0) {
    return attrInt(node, "noop_with_empty_axes", 0) ? [] : x.shape.map((_, i) => i);
  }
  return [...new Set(axes.map((a) => normAxis(a, rank)))].sort((p, q) => p - q);
}

// ----- constants and shapes -----------------------------------------------------------------

/** A scalar constant in a float dtype (float16 goes through a Cast). */
export function scalarOf(b: GraphBuilder, x: number, dtype: DType): Value {
  return dtype === "float16" ? b.cast(b.scalar(x, "float32"), "float16") : b.scalar(x, dtype);
}

/** The shape of `v` as an int64 tensor: a constant when static, else a Shape node. */
export function shapeOf(b: GraphBuilder, v: Value): Value {
  return v.shape.every(isStatic) ? b.ints(v.shape as number[]) : b.shape(v);
}

/** Zeros shaped like `v` (Expand of a scalar 0: stays on WebGPU, unlike ConstantOfShape). */
export function zerosLike(b: GraphBuilder, v: Value): Value {
  const zero = scalarOf(b, 0, v.dtype);
  return v.shape.length === 0 ? zero : b.expand(zero, shapeOf(b, v));
}

/** Equal dims: the same number, or the same symbolic name. */
export function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

/**
 * The axes of `from` to sum so a gradient of shape `from` becomes one of shape `to` (numpy
 * broadcasting undone): the leading axes `to` lacks, and the axes where `to` is a static 1 and
 * `from` is not. A symbolic dim of `to` is taken to equal the matching dim of `from`.
 */
export function broadcastAxes(from: Shape, to: Shape): { lead: number[]; inner: number[] } {
  const extra = from.length - to.length;
  if (extra < 0) {
    throw new Error(`cannot undo broadcasting from [${from}] to the longer shape [${to}]`);
  }
  const lead = Array.from({ length: extra }, (_, i) => i);
  const inner = to.flatMap((d, i) => (d === 1 && from[i + extra] !== 1 ? [i + extra] : []));
  return { lead, inner };
}

/**
 * Sum gradient `g` (forward shape `from`) over the broadcast axes so it gets shape `to`:
 * one ReduceSum, then a Squeeze of the leading axes when some inner axes were kept.
 */
export function unbroadcast(b: GraphBuilder, g: Value, from: Shape, to: Shape): Value {
  const { lead, inner } = broadcastAxes(from, to);
  if (lead.length === 0 && inner.length === 0) return g;
  if (inner.length === 0) return b.reduceSum(g, lead, false);
  const kept = b.reduceSum(g, [...lead, ...inner], true);
  return lead.length === 0 ? kept : b.squeeze(kept, lead);
}

/**
 * Reshape `g` (forward shape `from`) to the shape of `like`: a constant target where it can be
 * written with static sizes, 0 (copy the dim at the same index) and one -1; else Shape(like).
 */
export function reshapeLike(b: GraphBuilder, g: Value, from: Shape, like: Value): Value {
  const to = like.shape;
  if (to.length === from.length && to.every((d, i) => sameDim(d, from[i]))) return g;
  const target: number[] = [];
  let minus = false;
  for (let i = 0; i < to.length; i++) {
    const d = to[i];
    if (isStatic(d) && d !== 0) target.push(d);
    else if (!isStatic(d) && i < from.length && sameDim(from[i], d)) target.push(0);
    else if (!isStatic(d) && !minus) {
      target.push(-1);
      minus = true;
    } else return b.reshape(g, b.shape(like));
  }
  return b.reshape(g, target);
}

/** Insert the reduced axes back (size 1) into a Reduce*'s gradient when keepdims was 0. */
export function keepReduced(b: GraphBuilder, node: Node, g: Value, axes: number[]): Value {
  return attrInt(node, "keepdims", 1) === 1 || axes.length === 0 ? g : b.unsqueeze(g, axes);
}

/**
 * Target shape for expanding a kept-dims gradient back over `x`: x's size on the reduced axes,
 * 1 elsewhere (the gradient already carries those dims); Shape(x) when a reduced dim is symbolic.
 */
export function expandTarget(b: GraphBuilder, x: Value, axes: number[]): Value {
  const dims = x.shape.map((d, i) => (axes.includes(i) ? d : 1));
  return dims.every(isStatic) ? b.ints(dims as number[]) : b.shape(x);
}

/**
 * The number of elements a reduction over `axes` of `x` sums, as a float scalar: a constant for
 * static dims; otherwise counted at run time by summing ones over a slice of x that keeps only
 * the reduced axes (all WebGPU-safe, unlike Size/Cast of int64).
 */
export function countOf(b: GraphBuilder, x: Value, axes: number[], dtype: DType): Value {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every(isStatic)) {
    return scalarOf(b, (dims as number[]).reduce((p, d) => p * d, 1), dtype);
  }
  const others = x.shape.flatMap((_, i) => (axes.includes(i) ? [] : [i]));
  const part = others.length === 0 ? x : b.slice(
    x,
    others.map(() => 0),
    others.map(() => 1),
    others,
  );
  const ones = b.expand(scalarOf(b, 1, dtype), b.shape(part));
  return b.op1("ReduceSum", [ones], { keepdims: 0 });
}

/** Transpose swapping the last two axes. */
export function swapLast(b: GraphBuilder, v: Value): Value {
  const r = v.shape.length;
  const perm = v.shape.map((_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return b.transpose(v, perm);
}

/** The inverse of a permutation. */
export function invertPerm(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}
