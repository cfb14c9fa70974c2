/**
 * The graph IR: typed values with static or symbolic shapes, nodes, and graphs.
 *
 * A `Value` is an SSA edge: produced by exactly one node (or a graph input / initializer) and
 * consumed by any number of nodes. Shapes are lists of dims; a dim is a number (static), a name
 * such as `"batch"` (symbolic, equal names are equal sizes), or a name starting with `?` (unknown,
 * created when inference cannot tell).
 *
 * @module
 */

/** Element types the engine uses; the names match onnxruntime-node's tensor types. */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "int32"
  | "int64"
  | "bool"
  | "uint8"
  | "int8";

/** ONNX `TensorProto.DataType` code of each dtype. */
export const ONNX_DTYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
};

/** Floating dtypes: the only ones that carry gradients. */
export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(["float32", "float64", "float16"]);

/** A dimension: a static size, a symbolic name, or an unknown (`?…`). */
export type Dim = number | string;

/** A shape: one dim per axis; `[]` is a scalar. */
export type Shape = readonly Dim[];

/** Typed-array storage of a constant tensor. */
export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Int8Array;

/** A constant tensor: an initializer, an attribute tensor, or a known constant input. */
export interface ConstTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly data: TensorData;
}

/** An SSA value: one edge of the graph. */
export interface Value {
  /** Unique name inside the graph; ONNX wires nodes by these names. */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
  /** Set when the value's content is known while building (initializers, shape constants). */
  readonly constant?: ConstTensor;
}

/** An attribute value; arrays of numbers are ints unless the attribute is declared float. */
export type Attr =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "ints"; readonly value: readonly number[] }
  | { readonly kind: "floats"; readonly value: readonly number[] }
  | { readonly kind: "tensor"; readonly value: ConstTensor };

/** One operator application. `null` inputs are ONNX's omitted optional inputs. */
export interface Node {
  readonly op: string;
  readonly domain: string;
  readonly inputs: readonly (Value | null)[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, Attr>>;
  /** Build-time marks that are not serialized; `stopGradient` blocks autodiff through the node. */
  readonly meta?: { readonly stopGradient?: boolean };
}

/** A finished graph: the unit that is serialized and run. */
export interface Graph {
  readonly name: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  /** Topologically ordered. */
  readonly nodes: readonly Node[];
  /** Values whose content is stored in the model. */
  readonly initializers: readonly Value[];
  /** Opset of the default ONNX domain. */
  readonly opset: number;
}

/** The default-domain opset we emit: 20 has ReduceMean/ReduceMax with an axes input and Gelu. */
export const DEFAULT_OPSET = 20;

/** Number of elements of a static shape, or `undefined` when a dim is not static. */
export function staticSize(shape: Shape): number | undefined {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number") return undefined;
    n *= d;
  }
  return n;
}

/** Human-readable shape, e.g. `[batch,16]`. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

/** True when the dim is a number. */
export function isStatic(d: Dim): d is number {
  return typeof d === "number";
}

/** A typed-array class: `new C(length)` for fresh storage, `new C(buffer)` for a view. */
export interface TensorDataClass {
  new (length: number): TensorData;
  new (buffer: ArrayBuffer, byteOffset?: number, length?: number): TensorData;
}

/** The typed-array class that stores each dtype (float16 as its raw 16-bit patterns). */
export const DTYPE_STORAGE: Readonly<Record<DType, TensorDataClass>> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
};

/** Zero-filled storage for `n` elements of a dtype. */
export function emptyData(dtype: DType, n: number): TensorData {
  return new DTYPE_STORAGE[dtype](n);
}
