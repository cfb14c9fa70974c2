/**
 * Serializer from our `Graph` to ONNX `ModelProto` bytes (protobuf wire format, written by hand:
 * only the handful of messages ONNX needs). Field numbers follow `onnx/onnx.proto3`.
 *
 * Weights of large models should be graph inputs, not initializers: protobuf messages are
 * limited to 2 GB, and inputs are fed zero-copy on the CPU EP.
 *
 * @module
 */

import type { Attr, ConstTensor, Graph, Node, Value } from "./ir.ts";
import { ONNX_DTYPE } from "./ir.ts";

/** ONNX IR version 9 (ONNX 1.14+): understood by ORT 1.30. */
const IR_VERSION = 9;

/** AttributeProto.AttributeType codes. */
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

/** Protobuf writer that accumulates chunks; nested messages are written to a child writer. */
class Writer {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  length = 0;

  #flushScratch(): void {
    if (this.#scratch.length === 0) return;
    const bytes = Uint8Array.from(this.#scratch);
    this.#chunks.push(bytes);
    this.length += bytes.length;
    this.#scratch = [];
  }

  #varint(n: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(n));
    while (v >= 0x80n) {
      this.#scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#scratch.push(Number(v));
  }

  #tag(field: number, wire: number): void {
    this.#varint((field << 3) | wire);
  }

  int(field: number, n: number | bigint): void {
    this.#tag(field, 0);
    this.#varint(n);
  }

  float(field: number, x: number): void {
    this.#tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, x, true);
    this.#scratch.push(...b);
  }

  bytes(field: number, data: Uint8Array): void {
    this.#tag(field, 2);
    this.#varint(data.length);
    this.#flushScratch();
    this.#chunks.push(data);
    this.length += data.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, build: (w: Writer) => void): void {
    const child = new Writer();
    build(child);
    this.bytes(field, child.finish());
  }

  finish(): Uint8Array {
    this.#flushScratch();
    if (this.#chunks.length === 1) return this.#chunks[0];
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

function writeTensor(w: Writer, name: string, t: ConstTensor): void {
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_DTYPE[t.dtype]);
  if (name) w.string(8, name);
  const d = t.data;
  w.bytes(9, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
}

function writeValueInfo(w: Writer, v: Value): void {
  w.string(1, v.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, ONNX_DTYPE[v.dtype]);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === "number" ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }));
}

const ATTR_WRITERS: { [K in Attr["kind"]]: (w: Writer, a: Extract<Attr, { kind: K }>) => void } = {
  int: (w, a) => w.int(3, a.value),
  float: (w, a) => w.float(2, a.value),
  string: (w, a) => w.string(4, a.value),
  ints: (w, a) => a.value.forEach((x) => w.int(8, x)),
  floats: (w, a) => a.value.forEach((x) => w.float(7, x)),
  tensor: (w, a) => w.message(5, (t) => writeTensor(t, "", a.value)),
};

function writeAttr(w: Writer, name: string, a: Attr): void {
  w.string(1, name);
  (ATTR_WRITERS[a.kind] as (w: Writer, a: Attr) => void)(w, a);
  w.int(20, ATTR_TYPE[a.kind]);
}

function writeNode(w: Writer, n: Node, index: number): void {
  for (const i of n.inputs) w.string(1, i ? i.name : "");
  for (const o of n.outputs) w.string(2, o.name);
  w.string(3, `${n.op}_${index}`);
  w.string(4, n.op);
  for (const [k, a] of Object.entries(n.attrs)) w.message(5, (aw) => writeAttr(aw, k, a));
  if (n.domain) w.string(7, n.domain);
}

/** Options of `serializeModel`. */
export interface SerializeOptions {
  /** Recorded as ModelProto.producer_name. */
  producer?: string;
}

/**
 * Encode a graph as ONNX ModelProto bytes.
 *
 * @param graph The graph to encode.
 * @param options Producer name.
 * @returns The model bytes, ready for `InferenceSession.create`.
 */
export function serializeModel(graph: Graph, options: SerializeOptions = {}): Uint8Array {
  const w = new Writer();
  w.int(1, IR_VERSION);
  w.string(2, options.producer ?? "sent-pipeline");
  w.message(7, (g) => {
    graph.nodes.forEach((n, i) => g.message(1, (nw) => writeNode(nw, n, i)));
    g.string(2, graph.name);
    for (const init of graph.initializers) {
      g.message(5, (t) => writeTensor(t, init.name, init.constant!));
    }
    for (const v of graph.inputs) g.message(11, (vi) => writeValueInfo(vi, v));
    for (const v of graph.outputs) g.message(12, (vi) => writeValueInfo(vi, v));
  });
  w.message(8, (op) => {
    op.string(1, "");
    op.int(2, graph.opset);
  });
  return w.finish();
}
