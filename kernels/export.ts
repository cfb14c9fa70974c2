/**
 * Export the policy as a standalone ONNX decoder with the input and output names that Hugging
 * Face Optimum, transformers.js and onnxruntime-genai use (kernels/README.md §4):
 *
 * | name | dtype | shape |
 * |---|---|---|
 * | `input_ids` | int64 | [batch_size, sequence_length] |
 * | `attention_mask` | int64 | [batch_size, past_sequence_length + sequence_length] |
 * | `position_ids` | int64 | [batch_size, sequence_length] |
 * | `past_key_values.{i}.key` / `.value` | float32 | [batch_size, K, past_sequence_length, E] |
 * | `logits` (out) | float32 | [batch_size, sequence_length, vocab] |
 * | `present.{i}.key` / `.value` (out) | float32 | [batch_size, K, past + sequence_length, E] |
 *
 * The first step feeds empty pasts (past_sequence_length = 0); each later step feeds the previous
 * step's `present.*` as `past_key_values.*`. The graph is the one the engine runs
 * (`buildDecoderGraph`, cache mode `concat`), with the weights as initializers under their HF names.
 *
 * Weights larger than {@link EXTERNAL_DATA_THRESHOLD} go to `model.onnx_data` beside the model
 * (ONNX external data, 4 KiB-aligned), so models over protobuf's 2 GB limit export too; load
 * those from the file path (not from bytes) so the runtime finds the data file. The initializers
 * are written as a second `graph` field after the serialized model: protobuf merges repeated
 * occurrences of a message field, so every reader sees one graph with all initializers.
 *
 * @example
 * ```ts
 * import { exportDecoder } from "./export.ts";
 * import { initWeights } from "./policy.ts";
 * import { tinyPolicyConfig } from "./transformer.ts";
 * const config = tinyPolicyConfig(32);
 * await exportDecoder(config, initWeights(config, { seed: 0 }), ".sent/tmp/onnx-export");
 * // .sent/tmp/onnx-export/model.onnx (+ config.json)
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { ONNX_DTYPE, type Value } from "./ir.ts";
import { serializeModel } from "./onnx_proto.ts";
import {
  buildDecoderGraph,
  parameterShapes,
  type Qwen2Config,
  qwen2ConfigToHF,
  type Weights,
} from "./transformer.ts";

/** Total weight bytes above which weights are stored as external data (1 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 1 << 30;

/** File names written into the export directory. */
export const EXPORT_FILES = {
  model: "model.onnx",
  data: "model.onnx_data",
  config: "config.json",
} as const;

/** Options of {@link exportDecoder}. */
export interface ExportOptions {
  /** Store weights in `model.onnx_data`: default when they exceed the threshold. */
  externalData?: boolean;
  /** Extra keys for `config.json` (token ids, …). */
  config?: Readonly<Record<string, unknown>>;
  /**
   * Write `config.json` beside the model (default true); false when the caller writes its own one
   * level up, as in an HF model folder whose ONNX file lives in `onnx/`.
   */
  writeConfig?: boolean;
}

/** What {@link exportDecoder} wrote. */
export interface ExportedDecoder {
  /** Path of `model.onnx`. */
  readonly model: string;
  /** Path of the external data file, when used. */
  readonly data?: string;
  /** Input names in graph order. */
  readonly inputs: string[];
  /** Output names in graph order. */
  readonly outputs: string[];
}

/**
 * Write the decoder as `dir/model.onnx` (plus `model.onnx_data` for large weights) and, unless
 * told not to, `dir/config.json`.
 *
 * @param config The architecture.
 * @param weights Float32 weights by HF name.
 * @param dir Output directory (created if needed).
 * @param options External data, extra config keys, whether to write `config.json`.
 * @returns The files written and the model's input and output names.
 */
export async function exportDecoder(
  config: Qwen2Config,
  weights: ReadonlyMap<string, Float32Array>,
  dir: string,
  options: ExportOptions = {},
): Promise<ExportedDecoder> {
  const shapes = parameterShapes(config);
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, d) => a * d, 1);
    if (weights.get(name)?.length !== n) {
      throw new Error(
        `exportDecoder(): weight ${name} must be a Float32Array of ${n} elements ` +
          `([${shape.join(",")}]), got ${weights.get(name)?.length ?? "none"}`,
      );
    }
  }
  // Weights are plain values that no node produces; their initializers are appended below.
  const declare = (): Weights =>
    new Map([...shapes].map(([name, shape]) => [name, { name, dtype: "float32", shape } as Value]));
  const graph = buildDecoderGraph(config, {
    cache: "concat",
    logits: "all",
    indexDtype: "int64",
    name: "qwen2_decoder",
    weights: declare,
  });
  const bytes = [...shapes.values()].reduce((a, s) => a + 4 * s.reduce((x, d) => x * d, 1), 0);
  const external = options.externalData ?? bytes > EXTERNAL_DATA_THRESHOLD;

  await Deno.mkdir(dir, { recursive: true });
  const modelPath = join(dir, EXPORT_FILES.model);
  const dataPath = join(dir, EXPORT_FILES.data);
  const model = await Deno.open(modelPath, { write: true, create: true, truncate: true });
  try {
    await writeAll(model, serializeModel(graph, { producer: "sent-pipeline" }));
    const data = external
      ? await Deno.open(dataPath, { write: true, create: true, truncate: true })
      : undefined;
    try {
      let offset = 0;
      for (const [name, shape] of shapes) {
        const w = weights.get(name)!;
        const raw = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
        let tensor: Uint8Array;
        if (data) {
          const aligned = Math.ceil(offset / 4096) * 4096;
          if (aligned > offset) await writeAll(data, new Uint8Array(aligned - offset));
          await writeAll(data, raw);
          tensor = tensorProto(name, shape, { location: EXPORT_FILES.data, offset: aligned, raw });
          offset = aligned + raw.length;
        } else {
          tensor = tensorProto(name, shape, { raw });
        }
        // ModelProto.graph (7) { GraphProto.initializer (5) { tensor } }
        await writeAll(model, field(7, field(5, tensor)));
      }
    } finally {
      data?.close();
    }
  } finally {
    model.close();
  }
  if (options.writeConfig ?? true) {
    const hf = qwen2ConfigToHF(config, options.config ?? {});
    await Deno.writeTextFile(join(dir, EXPORT_FILES.config), JSON.stringify(hf, null, 2) + "\n");
  }
  return {
    model: modelPath,
    data: external ? dataPath : undefined,
    inputs: graph.inputs.map((v) => v.name),
    outputs: graph.outputs.map((v) => v.name),
  };
}

// ----- a few protobuf messages, by hand -----------------------------------------------------------

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** A length-delimited field (wire type 2). */
function field(num: number, payload: Uint8Array): Uint8Array {
  const head = [...varint((num << 3) | 2), ...varint(payload.length)];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

function intField(num: number, n: number): number[] {
  return [...varint(num << 3), ...varint(n)];
}

function concat(parts: (Uint8Array | number[])[]): Uint8Array {
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

/**
 * A float32 TensorProto: dims (1), data_type (2), name (8), then either raw_data (9) or
 * external_data (13: location, offset, length) with data_location (14) = EXTERNAL.
 */
function tensorProto(
  name: string,
  dims: readonly number[],
  data: { raw: Uint8Array; location?: string; offset?: number },
): Uint8Array {
  const parts: (Uint8Array | number[])[] = dims.map((d) => intField(1, d));
  parts.push(intField(2, ONNX_DTYPE.float32), field(8, text(name)));
  if (data.location === undefined) {
    parts.push(field(9, data.raw));
  } else {
    const entry = (k: string, v: string) =>
      field(13, concat([field(1, text(k)), field(2, text(v))]));
    parts.push(
      entry("location", data.location),
      entry("offset", String(data.offset)),
      entry("length", String(data.raw.length)),
      intField(14, 1),
    );
  }
  return concat(parts);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}
