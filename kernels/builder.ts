/**
 * `GraphBuilder`: a tape that records ONNX nodes. Values go in, a node is recorded, values come
 * out with their dtype and shape inferred (see `ops.ts`); constants and inputs are collected on
 * the side. `build()` returns an immutable `Graph` ready for `serializeModel` or `grad`.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * const b = new GraphBuilder("affine");
 * const x = b.input("x", "float32", ["batch", 3]);           // [batch,3]
 * const w = b.input("w", "float32", [3, 2]);                 // [3,2]
 * const y = b.add(b.matmul(x, w), b.scalar(1));              // [batch,2]
 * b.output(y, "y");
 * const graph = b.build();
 * ```
 *
 * @module
 */

import type { Attr, ConstTensor, DType, Graph, Node, Shape, TensorData, Value } from "./ir.ts";
import { DEFAULT_OPSET, ONNX_DTYPE } from "./ir.ts";
import { inferOutputs } from "./ops.ts";

/** Attribute shorthand accepted by `op()`: numbers are ints, use `{kind:"float"}` for floats. */
export type AttrInput = number | string | readonly number[] | Attr;

function toAttr(v: AttrInput): Attr {
  if (typeof v === "number") return { kind: "int", value: v };
  if (typeof v === "string") return { kind: "string", value: v };
  if (Array.isArray(v)) return { kind: "ints", value: v as number[] };
  return v as Attr;
}

/** A float attribute. */
export function floatAttr(value: number): Attr {
  return { kind: "float", value };
}

/** Options of `GraphBuilder`. */
export interface GraphBuilderOptions {
  /** Default-domain opset (default 20). */
  opset?: number;
}

/** Records nodes into a graph; see the module doc. */
export class GraphBuilder {
  readonly name: string;
  readonly opset: number;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Value[] = [];
  #names = new Set<string>();
  #counter = 0;
  #constCache = new Map<string, Value>();

  constructor(name: string, options: GraphBuilderOptions = {}) {
    this.name = name;
    this.opset = options.opset ?? DEFAULT_OPSET;
  }

  /** Start a builder holding a copy of an existing graph (used by autodiff to extend it). */
  static from(graph: Graph): GraphBuilder {
    const b = new GraphBuilder(graph.name, { opset: graph.opset });
    b.inputs.push(...graph.inputs);
    b.outputs.push(...graph.outputs);
    b.initializers.push(...graph.initializers);
    b.nodes.push(...graph.nodes);
    for (const v of [...graph.inputs, ...graph.initializers]) b.#names.add(v.name);
    for (const n of graph.nodes) for (const o of n.outputs) b.#names.add(o.name);
    return b;
  }

  /** A fresh unique value name built from a hint. */
  fresh(hint: string): string {
    let name = hint;
    while (this.#names.has(name)) name = `${hint}_${this.#counter++}`;
    this.#names.add(name);
    return name;
  }

  /** Declare a graph input. */
  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.#names.has(name)) {
      throw new Error(`graph ${this.name}: input name ${name} is already used`);
    }
    this.#names.add(name);
    const v: Value = { name, dtype, shape: [...shape] };
    this.inputs.push(v);
    return v;
  }

  /** Store a tensor in the model as an initializer. */
  initializer(name: string, tensor: ConstTensor): Value {
    const v: Value = {
      name: this.fresh(name),
      dtype: tensor.dtype,
      shape: [...tensor.dims],
      constant: tensor,
    };
    this.initializers.push(v);
    return v;
  }

  /** A constant tensor; equal small constants are shared. */
  constant(dtype: DType, dims: readonly number[], data: TensorData, hint = "const"): Value {
    const small = data.length <= 16;
    const key = small
      ? `${dtype}|${dims.join(",")}|${Array.from(data as ArrayLike<unknown>).join(",")}`
      : "";
    const hit = small ? this.#constCache.get(key) : undefined;
    if (hit) return hit;
    const v = this.initializer(hint, { dtype, dims: [...dims], data });
    if (small) this.#constCache.set(key, v);
    return v;
  }

  /** A scalar constant (rank 0). */
  scalar(x: number, dtype: DType = "float32"): Value {
    const data = dtype === "int64" ? BigInt64Array.of(BigInt(x)) : dataOf(dtype, [x]);
    return this.constant(dtype, [], data, "scalar");
  }

  /** A 1-D int64 constant: axes, shapes, starts, ends. */
  ints(values: readonly number[]): Value {
    return this.constant(
      "int64",
      [values.length],
      BigInt64Array.from(values, (x) => BigInt(x)),
      "ints",
    );
  }

  /** Record a node; returns its outputs (dtype and shape inferred). */
  op(
    op: string,
    inputs: readonly (Value | null)[],
    attrs: Readonly<Record<string, AttrInput>> = {},
    options: { outputs?: number; name?: string; stopGradient?: boolean } = {},
  ): Value[] {
    const attrMap = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, toAttr(v)]));
    const types = inferOutputs(op, inputs, attrMap);
    const count = options.outputs ?? types.length;
    const hint = options.name ?? op.toLowerCase();
    const outputs = types.slice(0, count).map((t) => ({
      name: this.fresh(hint),
      dtype: t.dtype,
      shape: t.shape,
    }));
    const meta = options.stopGradient ? { stopGradient: true } : undefined;
    this.nodes.push({ op, domain: "", inputs: [...inputs], outputs, attrs: attrMap, meta });
    return outputs;
  }

  /** Record a single-output node. */
  op1(
    op: string,
    inputs: readonly (Value | null)[],
    attrs: Readonly<Record<string, AttrInput>> = {},
  ): Value {
    return this.op(op, inputs, attrs)[0];
  }

  /** Mark `v` as a graph output named `name` (adds an Identity when the name differs). */
  output(v: Value, name = v.name): Value {
    if (this.outputs.some((o) => o.name === name)) {
      throw new Error(`graph ${this.name}: output ${name} is declared twice`);
    }
    const out = v.name === name ? v : this.#renamed(v, name);
    this.outputs.push(out);
    return out;
  }

  #renamed(v: Value, name: string): Value {
    if (this.#names.has(name)) {
      throw new Error(`graph ${this.name}: output name ${name} is already used`);
    }
    this.#names.add(name);
    const out: Value = { name, dtype: v.dtype, shape: v.shape };
    this.nodes.push({ op: "Identity", domain: "", inputs: [v], outputs: [out], attrs: {} });
    return out;
  }

  /** Freeze into a `Graph`. */
  build(): Graph {
    return {
      name: this.name,
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: [...this.nodes],
      initializers: [...this.initializers],
      opset: this.opset,
    };
  }

  // ----- elementwise --------------------------------------------------------------------------
  add(a: Value, b: Value): Value {
    return this.op1("Add", [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op1("Sub", [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op1("Mul", [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op1("Div", [a, b]);
  }
  pow(a: Value, b: Value): Value {
    return this.op1("Pow", [a, b]);
  }
  max(a: Value, b: Value): Value {
    return this.op1("Max", [a, b]);
  }
  min(a: Value, b: Value): Value {
    return this.op1("Min", [a, b]);
  }
  neg(x: Value): Value {
    return this.op1("Neg", [x]);
  }
  sqrt(x: Value): Value {
    return this.op1("Sqrt", [x]);
  }
  reciprocal(x: Value): Value {
    return this.op1("Reciprocal", [x]);
  }
  exp(x: Value): Value {
    return this.op1("Exp", [x]);
  }
  log(x: Value): Value {
    return this.op1("Log", [x]);
  }
  tanh(x: Value): Value {
    return this.op1("Tanh", [x]);
  }
  sigmoid(x: Value): Value {
    return this.op1("Sigmoid", [x]);
  }
  erf(x: Value): Value {
    return this.op1("Erf", [x]);
  }
  abs(x: Value): Value {
    return this.op1("Abs", [x]);
  }
  relu(x: Value): Value {
    return this.op1("Relu", [x]);
  }
  sin(x: Value): Value {
    return this.op1("Sin", [x]);
  }
  cos(x: Value): Value {
    return this.op1("Cos", [x]);
  }
  identity(x: Value): Value {
    return this.op1("Identity", [x]);
  }
  /** Gelu (opset 20); `approximate` is "none" or "tanh". */
  gelu(x: Value, approximate: "none" | "tanh" = "none"): Value {
    return this.op1("Gelu", [x], { approximate });
  }
  /** Clip to [lo, hi]; omit a bound with `null`. */
  clip(x: Value, lo: Value | null, hi: Value | null): Value {
    return this.op1("Clip", [x, lo, hi]);
  }
  where(cond: Value, a: Value, b: Value): Value {
    return this.op1("Where", [cond, a, b]);
  }
  equal(a: Value, b: Value): Value {
    return this.op1("Equal", [a, b]);
  }
  less(a: Value, b: Value): Value {
    return this.op1("Less", [a, b]);
  }
  greater(a: Value, b: Value): Value {
    return this.op1("Greater", [a, b]);
  }
  lessOrEqual(a: Value, b: Value): Value {
    return this.op1("LessOrEqual", [a, b]);
  }
  greaterOrEqual(a: Value, b: Value): Value {
    return this.op1("GreaterOrEqual", [a, b]);
  }
  and(a: Value, b: Value): Value {
    return this.op1("And", [a, b]);
  }
  not(x: Value): Value {
    return this.op1("Not", [x]);
  }
  cast(x: Value, to: DType): Value {
    return x.dtype === to ? x : this.op1("Cast", [x], { to: ONNX_DTYPE[to] });
  }
  /** Identity that autodiff treats as a constant: no gradient flows through it. */
  stopGradient(x: Value): Value {
    return this.op("Identity", [x], {}, { stopGradient: true, name: "stop_gradient" })[0];
  }

  // ----- linear algebra -----------------------------------------------------------------------
  matmul(a: Value, b: Value): Value {
    return this.op1("MatMul", [a, b]);
  }
  gemm(
    a: Value,
    b: Value,
    c: Value | null,
    opts: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
  ): Value {
    const attrs: Record<string, AttrInput> = {};
    if (opts.transA) attrs.transA = 1;
    if (opts.transB) attrs.transB = 1;
    if (opts.alpha !== undefined) attrs.alpha = floatAttr(opts.alpha);
    if (opts.beta !== undefined) attrs.beta = floatAttr(opts.beta);
    return this.op1("Gemm", c ? [a, b, c] : [a, b], attrs);
  }

  // ----- reductions and normalisers -----------------------------------------------------------
  softmax(x: Value, axis = -1): Value {
    return this.op1("Softmax", [x], { axis });
  }
  reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op1("ReduceSum", [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMean(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op1("ReduceMean", [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceMax(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op1("ReduceMax", [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceLogSumExp(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op1("ReduceLogSumExp", [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  reduceSumSquare(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.op1("ReduceSumSquare", [x, this.ints(axes)], { keepdims: keepdims ? 1 : 0 });
  }
  argmax(x: Value, axis = -1, keepdims = false): Value {
    return this.op1("ArgMax", [x], { axis, keepdims: keepdims ? 1 : 0 });
  }
  /** log softmax as x − logsumexp(x): stays on the WebGPU EP, where LogSoftmax does not. */
  logSoftmax(x: Value, axis = -1): Value {
    return this.sub(x, this.reduceLogSumExp(x, [axis]));
  }

  // ----- indexing ---------------------------------------------------------------------------
  gather(data: Value, indices: Value, axis = 0): Value {
    return this.op1("Gather", [data, indices], { axis });
  }
  gatherElements(data: Value, indices: Value, axis = 0): Value {
    return this.op1("GatherElements", [data, indices], { axis });
  }
  scatterND(
    data: Value,
    indices: Value,
    updates: Value,
    reduction: "none" | "add" = "none",
  ): Value {
    return this.op1(
      "ScatterND",
      [data, indices, updates],
      reduction === "none" ? {} : { reduction },
    );
  }
  scatterElements(
    data: Value,
    indices: Value,
    updates: Value,
    axis = 0,
    reduction: "none" | "add" = "none",
  ): Value {
    return this.op1(
      "ScatterElements",
      [data, indices, updates],
      reduction === "none" ? { axis } : { axis, reduction },
    );
  }
  /** GatherND (batch_dims 0): `indices[..., k]` picks slices of `data`'s first k axes. */
  gatherND(data: Value, indices: Value): Value {
    return this.op1("GatherND", [data, indices]);
  }
  topk(x: Value, k: number, axis = -1): [Value, Value] {
    const [v, i] = this.op("TopK", [x, this.ints([k])], { axis });
    return [v, i];
  }
  trilu(x: Value, upper: boolean, k = 0): Value {
    return this.op1("Trilu", [x, this.scalar(k, "int64")], { upper: upper ? 1 : 0 });
  }

  // ----- shape ------------------------------------------------------------------------------
  reshape(x: Value, shape: readonly number[] | Value): Value {
    return this.op1("Reshape", [
      x,
      Array.isArray(shape) ? this.ints(shape as number[]) : shape as Value,
    ]);
  }
  transpose(x: Value, perm: readonly number[]): Value {
    return this.op1("Transpose", [x], { perm });
  }
  slice(
    x: Value,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
    steps?: readonly number[],
  ): Value {
    const ins = [x, this.ints(starts), this.ints(ends), this.ints(axes)];
    return this.op1("Slice", steps ? [...ins, this.ints(steps)] : ins);
  }
  concat(xs: readonly Value[], axis: number): Value {
    return this.op1("Concat", xs, { axis });
  }
  split(x: Value, sizes: readonly number[], axis: number): Value[] {
    return this.op("Split", [x, this.ints(sizes)], { axis });
  }
  expand(x: Value, shape: readonly number[] | Value): Value {
    return this.op1("Expand", [
      x,
      Array.isArray(shape) ? this.ints(shape as number[]) : shape as Value,
    ]);
  }
  /**
   * Constant-mode Pad: `pads` is [begin…, end…] per axis (all axes, or `axes` when given), as a
   * constant list or a run-time int64 tensor; the padding value is 0 unless `value` is given.
   */
  pad(
    x: Value,
    pads: readonly number[] | Value,
    value: Value | null = null,
    axes?: readonly number[],
  ): Value {
    const p = Array.isArray(pads) ? this.ints(pads as number[]) : pads as Value;
    const ins = axes ? [x, p, value, this.ints(axes)] : value ? [x, p, value] : [x, p];
    return this.op1("Pad", ins);
  }
  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.op1("Unsqueeze", [x, this.ints(axes)]);
  }
  squeeze(x: Value, axes: readonly number[]): Value {
    return this.op1("Squeeze", [x, this.ints(axes)]);
  }
  shape(x: Value): Value {
    return this.op1("Shape", [x]);
  }
  /** Zeros (or `value`) shaped like a run-time shape tensor. */
  constantOfShape(shape: Value, dtype: DType = "float32", value = 0): Value {
    return this.op1("ConstantOfShape", [shape], {
      value: { kind: "tensor", value: { dtype, dims: [1], data: dataOf(dtype, [value]) } },
    });
  }
}

/** Typed storage holding `values` in `dtype`. */
export function dataOf(dtype: DType, values: readonly number[]): TensorData {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int32":
      return Int32Array.from(values);
    case "int64":
      return BigInt64Array.from(values, (x) => BigInt(x));
    case "bool":
    case "uint8":
      return Uint8Array.from(values);
    case "int8":
      return Int8Array.from(values);
    case "float16":
      throw new Error("dataOf(): float16 constants must be given as Uint16Array bits");
  }
}
