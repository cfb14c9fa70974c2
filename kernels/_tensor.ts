/**
 * Tensor handles for compiled programs: `HostTensor` (data in JS memory) and `DeviceTensor`
 * (data resident on the WebGPU device).
 *
 * The split exists to make two silent failures of onnxruntime-node 1.30 impossible
 * (kernels/README.md §1):
 * - reading a GPU tensor's data (`getData()` aborts the process): `DeviceTensor` has no data
 *   accessor at all; read it with `download()` (see `session.ts`);
 * - feeding a GPU tensor to a CPU session (silently returns NaN): programs check the handle's
 *   `location` against their device and refuse with an error naming the input.
 *
 * The underlying `ort.Tensor` is kept in a module-private map, so only the session code can reach
 * it (`toOrt` / `fromOrt` are not re-exported by `mod.ts`).
 *
 * @module
 */

import * as ort from "onnxruntime-node";
import type { DType, TensorData } from "./ir.ts";
import { emptyData } from "./ir.ts";
import { dataOf } from "./builder.ts";

/** A tensor whose data lives in JS memory; fed to any device, read directly. */
export class HostTensor {
  /** Always `"cpu"`: the data is a typed array in this process. */
  readonly location = "cpu" as const;
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Row-major element data (bool as 0/1 bytes, float16 as raw bits). */
  readonly data: TensorData;

  /**
   * Wrap a typed array as a tensor of the given shape.
   *
   * @param dtype Element type.
   * @param dims Shape; `[]` for a scalar.
   * @param data Row-major data; its length must equal the product of `dims`.
   */
  constructor(dtype: DType, dims: readonly number[], data: TensorData) {
    const size = dims.reduce((a, d) => a * d, 1);
    if (data.length !== size) {
      throw new Error(
        `HostTensor: ${data.length} elements do not fill shape [${dims.join(",")}] ` +
          `(expected ${size})`,
      );
    }
    const expected = emptyData(dtype, 0).constructor;
    if (data.constructor !== expected) {
      throw new Error(
        `HostTensor: ${dtype} data must be a ${expected.name}, got ${data.constructor.name}`,
      );
    }
    this.dtype = dtype;
    this.dims = [...dims];
    this.data = data;
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length;
  }

  /** The elements as plain numbers (int64 converted with `Number`). */
  toNumbers(): number[] {
    return Array.from(this.data as ArrayLike<number | bigint>, Number);
  }

  /** The data as a Float32Array; throws unless the dtype is float32. */
  float32(): Float32Array {
    if (!(this.data instanceof Float32Array)) {
      throw new Error(`HostTensor: float32() called on a ${this.dtype} tensor`);
    }
    return this.data;
  }
}

/**
 * A tensor resident on the WebGPU device, produced by a program's resident output.
 *
 * It deliberately has no data accessor: read it with `download(tensor)`. Dispose it when it is
 * replaced (training state is replaced every step), or GPU memory leaks.
 */
export class DeviceTensor {
  /** Where the data lives; only the WebGPU EP can keep tensors on the device in ORT 1.30. */
  readonly location = "webgpu" as const;
  readonly dtype: DType;
  readonly dims: readonly number[];

  /** Use `fromOrt`; this constructor is not meant for callers. */
  constructor(dtype: DType, dims: readonly number[]) {
    this.dtype = dtype;
    this.dims = [...dims];
  }

  /** True once `dispose()` ran; a disposed tensor can no longer be fed. */
  get disposed(): boolean {
    return !ORT_OF.has(this);
  }

  /** Free the device buffer. Idempotent. */
  dispose(): void {
    const t = ORT_OF.get(this);
    if (!t) return;
    ORT_OF.delete(this);
    t.dispose();
  }
}

/** Either kind of tensor handle. */
export type Tensor = HostTensor | DeviceTensor;

const ORT_OF = new WeakMap<DeviceTensor, ort.Tensor>();

/**
 * A host tensor from a typed array or plain numbers.
 *
 * @param dtype Element type.
 * @param dims Shape; `[]` for a scalar.
 * @param values Typed array (used as is) or numbers (converted to `dtype`).
 * @returns The tensor.
 * @example
 * ```ts
 * import { hostTensor } from "./_tensor.ts";
 * const x = hostTensor("float32", [2, 2], [1, 2, 3, 4]);
 * x.data; // Float32Array [1, 2, 3, 4]
 * ```
 */
export function hostTensor(
  dtype: DType,
  dims: readonly number[],
  values: TensorData | readonly number[],
): HostTensor {
  const data = Array.isArray(values) ? dataOf(dtype, values) : values as TensorData;
  return new HostTensor(dtype, dims, data);
}

/** A zero-filled host tensor. */
export function zerosTensor(dtype: DType, dims: readonly number[]): HostTensor {
  return new HostTensor(dtype, dims, emptyData(dtype, dims.reduce((a, d) => a * d, 1)));
}

/** The `ort.Tensor` behind a handle (session internals only). */
export function toOrt(t: Tensor, what: string): ort.Tensor {
  if (t instanceof HostTensor) {
    return new ort.Tensor(t.dtype, t.data as ort.Tensor.DataType, t.dims);
  }
  const inner = ORT_OF.get(t);
  if (!inner) throw new Error(`${what}: the webgpu tensor was disposed and cannot be fed again`);
  return inner;
}

/** Wrap an ORT output as a handle (session internals only). */
export function fromOrt(t: ort.Tensor): Tensor {
  const dtype = t.type as DType;
  if (t.location === "gpu-buffer") {
    const handle = new DeviceTensor(dtype, t.dims);
    ORT_OF.set(handle, t);
    return handle;
  }
  const data = t.data as unknown as ArrayBufferView;
  if (dtype === "float16" && !(data instanceof Uint16Array)) {
    // ORT hands float16 out as Float16Array where the runtime has one; keep the raw bits.
    return new HostTensor(dtype, t.dims, new Uint16Array(data.buffer, data.byteOffset, t.size));
  }
  return new HostTensor(dtype, t.dims, data as TensorData);
}
