/**
 * The safetensors file format: read and write tensors a tensor at a time.
 *
 * Layout of a file (all integers little-endian):
 *
 * ```
 * [8 bytes] N = byte length of the header (u64)
 * [N bytes] JSON header: {"__metadata__": {str: str}?, name: {dtype, shape, data_offsets: [b, e]}, …}
 *           padded with spaces so that N is a multiple of 8
 * [rest]    data section; tensor `name` is bytes [b, e) of it, row-major, little-endian
 * ```
 *
 * A file is valid when the header is a UTF-8 JSON object starting with `{`, N ≤ 100 MB, every dtype
 * is known, every tensor's byte span is `product(shape) × dtype size`, and the spans tile the data
 * section exactly: they start at 0, do not overlap, leave no gaps and end at the end of the file.
 * `openSafetensors` checks all of this before any tensor is read, and every error names the file,
 * the tensor and what was expected.
 *
 * Loading converts 16-bit floats (F16, BF16) to `float32`; other dtypes load as their own type. A
 * tensor is read with one seek into a buffer of its final size (16-bit floats are converted chunk
 * by chunk), so peak memory is the loaded tensors, never a second copy of the file. Writing streams
 * too: tensors may be given as functions that produce their data when it is their turn, and
 * `float32` data can be stored as BF16 (round to nearest even) or F16.
 *
 * Pickle-based checkpoints (`.bin`, `.pt`, `.pth`, `.ckpt`) are refused: unpickling can run
 * arbitrary code, so only safetensors are loaded.
 *
 * @example
 * ```ts
 * import { openSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = ".sent/tmp/example.safetensors";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * await writeSafetensors(path, {
 *   "embed.weight": { dtype: "float32", dims: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
 * }, { float32As: "BF16" });
 * using file = await openSafetensors(path);
 * file.info("embed.weight"); // { dtype: "BF16", dims: [2, 3], … }
 * const t = await file.read("embed.weight"); // { dtype: "float32", dims: [2, 3], data: Float32Array }
 * ```
 *
 * @module
 */

import type { ConstTensor, DType, TensorData } from "./ir.ts";
import { DTYPE_BYTES, DTYPE_STORAGE } from "./ir.ts";

/** Element types of the safetensors format (the `dtype` strings of the header). */
export type SafetensorsDType =
  | "BOOL"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "F64"
  | "I64"
  | "U64";

/** How a stored dtype is laid out and what it loads as. */
interface StoredDType {
  /** Bytes per element. */
  readonly bytes: number;
  /** The engine dtype a loaded tensor gets; absent when we cannot load the dtype. */
  readonly loadsAs?: DType;
  /** Converts a chunk of stored elements into `out` at element `at`; absent for plain copies. */
  readonly convert?: (chunk: Uint8Array, out: Float32Array, at: number) => void;
}

/** Every dtype of the format; the ones without `loadsAs` parse but refuse to load. */
const STORED: Readonly<Record<SafetensorsDType, StoredDType>> = {
  BOOL: { bytes: 1, loadsAs: "bool" },
  U8: { bytes: 1, loadsAs: "uint8" },
  I8: { bytes: 1, loadsAs: "int8" },
  F8_E5M2: { bytes: 1 },
  F8_E4M3: { bytes: 1 },
  I16: { bytes: 2 },
  U16: { bytes: 2 },
  F16: { bytes: 2, loadsAs: "float32", convert: f16ToF32 },
  BF16: { bytes: 2, loadsAs: "float32", convert: bf16ToF32 },
  I32: { bytes: 4, loadsAs: "int32" },
  U32: { bytes: 4 },
  F32: { bytes: 4, loadsAs: "float32" },
  F64: { bytes: 8, loadsAs: "float64" },
  I64: { bytes: 8, loadsAs: "int64" },
  U64: { bytes: 8 },
};

/** Stored dtype of each engine dtype when written as is. */
const STORED_AS: Readonly<Record<DType, SafetensorsDType>> = {
  float32: "F32",
  float64: "F64",
  float16: "F16",
  int32: "I32",
  int64: "I64",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** Typed-array class that holds each engine dtype (float16 is raw bits in a Uint16Array). */
const ARRAY_OF: Readonly<Record<DType, string>> = {
  float32: "Float32Array",
  float64: "Float64Array",
  float16: "Uint16Array",
  int32: "Int32Array",
  int64: "BigInt64Array",
  int8: "Int8Array",
  uint8: "Uint8Array",
  bool: "Uint8Array",
};

/** Largest header the reference implementation accepts (100 MB). */
export const MAX_HEADER_BYTES = 100_000_000;

/** File extensions of pickle-based checkpoints, which we never load. */
export const PICKLE_EXTENSIONS: readonly string[] = [".bin", ".pt", ".pth", ".ckpt", ".pkl"];

/** Elements converted per read when a stored dtype differs from the loaded one (4 Mi). */
const CHUNK_ELEMENTS = 1 << 22;

/** The byte order we rely on: the format and typed arrays must agree. */
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A malformed, truncated or unreadable safetensors file, or a bad tensor given to the writer. */
export class SafetensorsError extends Error {
  /** The file the error is about. */
  readonly path: string;
  /** The tensor the error is about, when it is about one. */
  readonly tensor?: string;

  constructor(path: string, message: string, tensor?: string) {
    super(tensor === undefined ? `${path}: ${message}` : `${path}: tensor "${tensor}": ${message}`);
    this.name = "SafetensorsError";
    this.path = path;
    this.tensor = tensor;
  }
}

/** Where one tensor lives in a file, as its header says. */
export interface TensorInfo {
  /** Tensor name, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  readonly name: string;
  /** Stored element type. */
  readonly dtype: SafetensorsDType;
  /** Shape; `[]` is a scalar. */
  readonly dims: readonly number[];
  /** First byte, relative to the start of the data section. */
  readonly begin: number;
  /** One past the last byte, relative to the start of the data section. */
  readonly end: number;
}

/** The parsed, validated header of a file. */
export interface SafetensorsHeader {
  /** The `__metadata__` string map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensors in data order. */
  readonly tensors: readonly TensorInfo[];
}

/**
 * Parse and validate a header against the size of the data section that follows it.
 *
 * @param json The header text (trailing padding spaces allowed).
 * @param dataBytes Length of the data section: file size − 8 − header length.
 * @param path File name used in error messages.
 * @returns The metadata and the tensors sorted by offset.
 * @throws SafetensorsError naming the tensor and the expected value for every kind of defect.
 *
 * @example
 * ```ts
 * import { parseSafetensorsHeader } from "./safetensors.ts";
 * const h = parseSafetensorsHeader('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8, "w.st");
 * h.tensors[0].dims; // [2]
 * ```
 */
export function parseSafetensorsHeader(
  json: string,
  dataBytes: number,
  path: string,
): SafetensorsHeader {
  if (!json.startsWith("{")) {
    throw new SafetensorsError(
      path,
      `header starts with ${JSON.stringify(json.slice(0, 16))}, expected a JSON object "{…"`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(path, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw new SafetensorsError(path, "header is not a JSON object");

  let metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(raw)) {
    if (name === "__metadata__") metadata = parseMetadata(entry, path);
    else tensors.push(parseEntry(name, entry, dataBytes, path));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(tensors, dataBytes, path);
  return { metadata, tensors };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function parseMetadata(entry: unknown, path: string): Record<string, string> {
  if (entry === null) return {};
  if (!isObject(entry)) {
    throw new SafetensorsError(path, `__metadata__ is ${JSON.stringify(entry)}, expected a map`);
  }
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(
        path,
        `__metadata__.${k} is ${JSON.stringify(v)}, expected a string (metadata maps str → str)`,
      );
    }
  }
  return entry as Record<string, string>;
}

function isSize(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function parseEntry(name: string, entry: unknown, dataBytes: number, path: string): TensorInfo {
  const fail = (msg: string) => new SafetensorsError(path, msg, name);
  if (!isObject(entry)) {
    throw fail(`header entry is ${JSON.stringify(entry)}, expected {dtype, shape, data_offsets}`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== "string" || !Object.hasOwn(STORED, dtype)) {
    throw fail(
      `dtype ${JSON.stringify(dtype)} is unknown, expected one of ${
        Object.keys(STORED).join(", ")
      }`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isSize)) {
    throw fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize)) {
    throw fail(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) throw fail(`data_offsets [${begin},${end}] end before they begin`);
  if (end > dataBytes) {
    throw fail(
      `data_offsets [${begin},${end}] run past the end of the data section (${dataBytes} bytes); ` +
        "the file is truncated or the offsets are wrong",
    );
  }
  const bytes = STORED[dtype as SafetensorsDType].bytes;
  const count = shape.reduce((n: number, d: number) => n * d, 1);
  if (end - begin !== count * bytes) {
    throw fail(
      `data_offsets [${begin},${end}] span ${end - begin} bytes, expected ${count * bytes} ` +
        `(shape [${shape.join(",")}] × ${bytes} bytes of ${dtype})`,
    );
  }
  return { name, dtype: dtype as SafetensorsDType, dims: shape as number[], begin, end };
}

/** Tensors sorted by offset must tile [0, dataBytes) exactly. */
function checkTiling(tensors: readonly TensorInfo[], dataBytes: number, path: string): void {
  let at = 0;
  let previous: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.begin < at) {
      throw new SafetensorsError(
        path,
        `data_offsets [${t.begin},${t.end}] overlap tensor "${previous!.name}" ` +
          `[${previous!.begin},${previous!.end}]; tensors must not share bytes`,
        t.name,
      );
    }
    if (t.begin > at) {
      throw new SafetensorsError(
        path,
        `data_offsets [${t.begin},${t.end}] leave bytes [${at},${t.begin}) unused; ` +
          `expected it to begin at ${at}, where the previous tensor ends`,
        t.name,
      );
    }
    at = t.end;
    previous = t;
  }
  if (at !== dataBytes) {
    throw new SafetensorsError(
      path,
      `the data section has ${dataBytes} bytes but the tensors cover ${at}; ` +
        "expected the last tensor to end at the end of the file",
    );
  }
}

// ----- reading ---------------------------------------------------------------------------------

/** An open safetensors file whose header has been validated; read tensors one at a time. */
export class SafetensorsFile {
  /** The file's path as given. */
  readonly path: string;
  /** The `__metadata__` map. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data section in the file (8 + header length). */
  readonly dataStart: number;
  readonly #file: Deno.FsFile;
  readonly #tensors: ReadonlyMap<string, TensorInfo>;
  /** Reads are serialized: each one seeks the shared file handle. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, file: Deno.FsFile, header: SafetensorsHeader, dataStart: number) {
    this.path = path;
    this.metadata = header.metadata;
    this.dataStart = dataStart;
    this.#file = file;
    this.#tensors = new Map(header.tensors.map((t) => [t.name, t]));
  }

  /** Tensor names in data order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** True when the file holds a tensor of that name. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /**
   * Where a tensor lives and how it is stored.
   *
   * @param name Tensor name.
   * @returns Its header entry.
   * @throws SafetensorsError when the file has no such tensor.
   */
  info(name: string): TensorInfo {
    const t = this.#tensors.get(name);
    if (t === undefined) {
      const known = this.names();
      const shown = known.slice(0, 8).join(", ") + (known.length > 8 ? ", …" : "");
      throw new SafetensorsError(this.path, `no such tensor; the file has ${shown}`, name);
    }
    return t;
  }

  /**
   * Read one tensor; F16 and BF16 come back as `float32`.
   *
   * @param name Tensor name.
   * @returns The tensor with engine dtype, shape and a typed array of its own.
   * @throws SafetensorsError for unknown names, dtypes we cannot load, or a short read.
   */
  read(name: string): Promise<ConstTensor> {
    const info = this.info(name);
    const run = this.#queue.then(() => this.#read(info));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #read(info: TensorInfo): Promise<ConstTensor> {
    const stored = STORED[info.dtype];
    if (stored.loadsAs === undefined) {
      const loadable = Object.entries(STORED).filter(([, s]) => s.loadsAs).map(([k]) => k);
      throw new SafetensorsError(
        this.path,
        `dtype ${info.dtype} cannot be loaded; loadable dtypes are ${loadable.join(", ")}`,
        info.name,
      );
    }
    if (!LITTLE_ENDIAN) {
      throw new SafetensorsError(this.path, "loading needs a little-endian machine", info.name);
    }
    const count = (info.end - info.begin) / stored.bytes;
    await this.#file.seek(this.dataStart + info.begin, Deno.SeekMode.Start);
    const dims = [...info.dims];
    if (stored.convert === undefined) {
      const buffer = new ArrayBuffer(info.end - info.begin);
      await this.#readExactly(new Uint8Array(buffer), info);
      return { dtype: stored.loadsAs, dims, data: new DTYPE_STORAGE[stored.loadsAs](buffer) };
    }
    const out = new Float32Array(count);
    const chunk = new Uint8Array(Math.min(count, CHUNK_ELEMENTS) * stored.bytes);
    for (let at = 0; at < count; at += CHUNK_ELEMENTS) {
      const n = Math.min(CHUNK_ELEMENTS, count - at);
      const part = chunk.subarray(0, n * stored.bytes);
      await this.#readExactly(part, info);
      stored.convert(part, out, at);
    }
    return { dtype: stored.loadsAs, dims, data: out };
  }

  async #readExactly(into: Uint8Array, info: TensorInfo): Promise<void> {
    let filled = 0;
    while (filled < into.length) {
      const n = await this.#file.read(into.subarray(filled));
      if (n === null) {
        throw new SafetensorsError(
          this.path,
          `file ended while reading bytes [${info.begin},${info.end}) of the data section`,
          info.name,
        );
      }
      filled += n;
    }
  }

  /** Close the file handle. */
  close(): void {
    this.#file.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * bf16 is the top half of an f32: shift the 16 bits back into place. Int32 views keep the loop in
 * small-integer arithmetic (a Uint32 store of `x << 16` would convert through a double).
 */
function bf16ToF32(chunk: Uint8Array, out: Float32Array, at: number): void {
  const src = new Uint16Array(chunk.buffer, chunk.byteOffset, chunk.length >> 1);
  const dst = new Int32Array(out.buffer, out.byteOffset + at * 4, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = src[i] << 16;
}

/** IEEE half → single through the runtime's Float16Array (exact: every f16 is an f32). */
function f16ToF32(chunk: Uint8Array, out: Float32Array, at: number): void {
  out.set(new Float16Array(chunk.buffer, chunk.byteOffset, chunk.length >> 1), at);
}

/**
 * Refuse pickle checkpoints by name before touching the file.
 *
 * @param path A checkpoint file path.
 * @throws SafetensorsError when the extension is one of {@link PICKLE_EXTENSIONS}.
 */
export function refusePickle(path: string): void {
  const lower = path.toLowerCase();
  const ext = PICKLE_EXTENSIONS.find((e) => lower.endsWith(e));
  if (ext !== undefined) {
    throw new SafetensorsError(
      path,
      `is a pickle checkpoint (${ext}); only safetensors are loaded, because unpickling can run ` +
        "arbitrary code. Convert it once with a trusted tool (e.g. transformers' " +
        "`save_pretrained(..., safe_serialization=True)`) and load the .safetensors file",
    );
  }
}

/**
 * Open a file and validate its header; no tensor data is read yet.
 *
 * @param path A `.safetensors` file.
 * @returns The open file; call `close()` (or `using`) when done.
 * @throws SafetensorsError for pickle files, short files, bad header lengths and invalid headers.
 *
 * @example
 * ```ts
 * import { openSafetensors, writeSafetensors } from "./safetensors.ts";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * const path = ".sent/tmp/open-example.safetensors";
 * await writeSafetensors(path, { w: { dtype: "float32", dims: [2, 3], data: new Float32Array(6) } });
 * using f = await openSafetensors(path);
 * f.names(); // ["w"]
 * f.info("w").dims; // [2, 3]
 * ```
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  refusePickle(path);
  const file = await Deno.open(path, { read: true });
  try {
    const size = (await file.stat()).size;
    const prefix = new Uint8Array(Math.min(8, size));
    await readFully(file, prefix);
    if (size < 8) {
      throw new SafetensorsError(
        path,
        `file is ${size} bytes, shorter than the 8-byte header length that starts every file`,
      );
    }
    const headerBytes = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerBytes > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        path,
        `header length ${headerBytes} exceeds the ${MAX_HEADER_BYTES}-byte limit` + sniff(prefix),
      );
    }
    const n = Number(headerBytes);
    if (8 + n > size) {
      throw new SafetensorsError(
        path,
        `header length ${n} runs past the end of the file (${size} bytes, so at most ` +
          `${size - 8})` + sniff(prefix),
      );
    }
    const headerData = new Uint8Array(n);
    await readFully(file, headerData);
    let json: string;
    try {
      json = new TextDecoder("utf-8", { fatal: true }).decode(headerData);
    } catch {
      throw new SafetensorsError(path, "header is not valid UTF-8");
    }
    const header = parseSafetensorsHeader(json, size - 8 - n, path);
    return new SafetensorsFile(path, file, header, 8 + n);
  } catch (e) {
    file.close();
    throw e;
  }
}

/** Why a file's length prefix may be nonsense: it is a pickle checkpoint under another name. */
function sniff(prefix: Uint8Array): string {
  const zip = prefix[0] === 0x50 && prefix[1] === 0x4b && prefix[2] === 3 && prefix[3] === 4;
  const pickle = prefix[0] === 0x80 && prefix[1] >= 2 && prefix[1] <= 5;
  return zip || pickle
    ? "; the file starts like a PyTorch zip/pickle checkpoint, and only safetensors are loaded"
    : "; the file is corrupt or not safetensors";
}

async function readFully(file: Deno.FsFile, into: Uint8Array): Promise<void> {
  let filled = 0;
  while (filled < into.length) {
    const n = await file.read(into.subarray(filled));
    if (n === null) break;
    filled += n;
  }
}

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** Read only these tensors (default: all). */
  names?: readonly string[];
}

/**
 * Read every (or the named) tensor of a file.
 *
 * @param path A `.safetensors` file.
 * @param options Which tensors to read.
 * @returns Tensors by name, in data order (or the order of `names`).
 * @throws SafetensorsError as {@link openSafetensors} and {@link SafetensorsFile.read}.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * const path = ".sent/tmp/read-example.safetensors";
 * await writeSafetensors(path, { b: { dtype: "float32", dims: [2], data: new Float32Array([1, 2]) } });
 * const tensors = await readSafetensors(path);
 * tensors.get("b")!.data; // Float32Array [1, 2]
 * ```
 */
export async function readSafetensors(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<Map<string, ConstTensor>> {
  using file = await openSafetensors(path);
  const out = new Map<string, ConstTensor>();
  for (const name of options.names ?? file.names()) out.set(name, await file.read(name));
  return out;
}

// ----- writing ---------------------------------------------------------------------------------

/**
 * A tensor to write. `data` may be a function, called when the tensor's turn comes, so a large
 * checkpoint can be produced and written a tensor at a time. A `ConstTensor` is a `TensorSource`.
 */
export interface TensorSource {
  /** Engine dtype of `data`. */
  readonly dtype: DType;
  /** Shape; `[]` is a scalar. */
  readonly dims: readonly number[];
  /** The elements, row-major, or a function returning them. */
  readonly data: TensorData | (() => TensorData | Promise<TensorData>);
}

/** How `float32` tensors are stored. */
export type Float32Storage = "F32" | "BF16" | "F16";

/** Options of {@link writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** The `__metadata__` map. Default `{format: "pt"}`, which transformers checks for. */
  metadata?: Readonly<Record<string, string>>;
  /** Store `float32` tensors as F32 (default), BF16 (round to nearest even) or F16. */
  float32As?: Float32Storage;
}

/** What {@link writeSafetensors} wrote. */
export interface WrittenSafetensors {
  /** The file. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** Tensor entries in data order. */
  tensors: TensorInfo[];
}

/**
 * Bytes a tensor takes in a file once stored.
 *
 * @param source The tensor (its data is not touched).
 * @param float32As How `float32` tensors will be stored (default F32).
 * @returns `product(dims) × stored element size`.
 *
 * @example
 * ```ts
 * import { storedBytes } from "./safetensors.ts";
 * storedBytes({ dtype: "float32", dims: [10, 10], data: new Float32Array(100) }, "BF16"); // 200
 * ```
 */
export function storedBytes(source: TensorSource, float32As: Float32Storage = "F32"): number {
  const stored = source.dtype === "float32" ? float32As : STORED_AS[source.dtype];
  return source.dims.reduce((n, d) => n * d, 1) * STORED[stored].bytes;
}

/** Encoders from a float32 chunk to stored bytes, for the `float32As` choices that convert. */
const FLOAT32_ENCODERS: Readonly<Record<Float32Storage, (src: Float32Array) => Uint8Array>> = {
  F32: (src) => new Uint8Array(src.buffer, src.byteOffset, src.byteLength),
  BF16: f32ToBf16,
  F16: (src) => new Uint8Array(new Float16Array(src).buffer),
};

/**
 * f32 → bf16 with round to nearest, ties to even: add 0x7FFF plus the lowest kept bit, then keep
 * the top 16 bits. NaNs keep their sign and become the quiet NaN 0x7FC0 so rounding cannot turn
 * them into infinities.
 */
function f32ToBf16(src: Float32Array): Uint8Array {
  // Int32 view: the bit tricks stay in small-integer arithmetic; `>>> 16` of a negative sum
  // still yields the right top 16 bits.
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) {
    const w = bits[i];
    if ((w & 0x7fffffff) > 0x7f800000) out[i] = (w >>> 16) | 0x7fc0;
    else out[i] = (w + 0x7fff + ((w >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}

let tempCounter = 0;

/**
 * Write tensors to a file atomically: into a temporary file beside it, then renamed into place.
 *
 * Header keys are in data order: wider dtypes first (so every tensor starts at a multiple of its
 * element size, as the reference writer arranges), then by name; the header is padded with spaces
 * to a multiple of 8 bytes. The same tensors therefore always give the same bytes.
 *
 * @param path Destination file.
 * @param tensors Tensors by name (a `Map` or a plain object).
 * @param options Metadata and the storage of `float32` tensors.
 * @returns The path, size and header entries written.
 * @throws SafetensorsError naming the tensor whose shape, dtype or data length is inconsistent.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * await writeSafetensors(".sent/tmp/w.safetensors", {
 *   w: { dtype: "float32", dims: [1024, 1024], data: () => new Float32Array(1024 * 1024) },
 * });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: ReadonlyMap<string, TensorSource> | Readonly<Record<string, TensorSource>>,
  options: WriteSafetensorsOptions = {},
): Promise<WrittenSafetensors> {
  if (!LITTLE_ENDIAN) throw new SafetensorsError(path, "writing needs a little-endian machine");
  const float32As = options.float32As ?? "F32";
  if (!Object.hasOwn(FLOAT32_ENCODERS, float32As)) {
    throw new SafetensorsError(path, `float32As ${float32As} is not one of F32, BF16, F16`);
  }
  const entries: [string, TensorSource][] = tensors instanceof Map
    ? [...tensors.entries()]
    : Object.entries(tensors as Record<string, TensorSource>);

  // Plan: stored dtype and byte span of each tensor, in data order.
  const planned = entries.map(([name, t]) => {
    checkSource(path, name, t);
    const dtype = t.dtype === "float32" ? float32As : STORED_AS[t.dtype];
    return { name, source: t, dtype, count: t.dims.reduce((n, d) => n * d, 1) };
  });
  planned.sort((a, b) =>
    STORED[b.dtype].bytes - STORED[a.dtype].bytes ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const infos: TensorInfo[] = [];
  let at = 0;
  for (const p of planned) {
    const end = at + p.count * STORED[p.dtype].bytes;
    infos.push({ name: p.name, dtype: p.dtype, dims: [...p.source.dims], begin: at, end });
    at = end;
  }
  let json = headerJson(options.metadata ?? { format: "pt" }, infos);
  const headerLength = new TextEncoder().encode(json).length;
  json += " ".repeat((8 - (headerLength % 8)) % 8);
  const headerData = new TextEncoder().encode(json);
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerData.length), true);

  const temp = `${path}.${Deno.pid}-${tempCounter++}.tmp`;
  const file = await Deno.open(temp, { write: true, create: true, truncate: true });
  try {
    await writeAll(file, prefix);
    await writeAll(file, headerData);
    for (const p of planned) {
      const data = typeof p.source.data === "function" ? await p.source.data() : p.source.data;
      checkData(path, p.name, p.source, data, p.count);
      await writeTensor(file, p.source.dtype, data, float32As);
    }
    await file.syncData();
    file.close();
    await Deno.rename(temp, path);
  } catch (e) {
    try {
      file.close();
    } catch { /* already closed */ }
    await Deno.remove(temp).catch(() => undefined);
    throw e;
  }
  return { path, bytes: 8 + headerData.length + at, tensors: infos };
}

/**
 * The header text with keys in a fixed order: `__metadata__` (its keys sorted), then tensors in
 * data order. Built by hand because object key order is not insertion order for names like "0".
 */
function headerJson(
  metadata: Readonly<Record<string, string>>,
  infos: readonly TensorInfo[],
): string {
  const meta = Object.keys(metadata).sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`);
  const parts = [`"__metadata__":{${meta.join(",")}}`];
  for (const t of infos) {
    const entry = `{"dtype":"${t.dtype}","shape":[${t.dims.join(",")}],` +
      `"data_offsets":[${t.begin},${t.end}]}`;
    parts.push(`${JSON.stringify(t.name)}:${entry}`);
  }
  return `{${parts.join(",")}}`;
}

function checkSource(path: string, name: string, t: TensorSource): void {
  if (name === "" || name === "__metadata__") {
    throw new SafetensorsError(path, `tensor name ${JSON.stringify(name)} is reserved or empty`);
  }
  if (!Object.hasOwn(STORED_AS, t.dtype)) {
    throw new SafetensorsError(
      path,
      `dtype ${t.dtype} cannot be written; expected one of ${Object.keys(STORED_AS).join(", ")}`,
      name,
    );
  }
  if (!t.dims.every((d) => isSize(d))) {
    throw new SafetensorsError(
      path,
      `dims [${t.dims.join(",")}] are not non-negative integers`,
      name,
    );
  }
}

function checkData(
  path: string,
  name: string,
  t: TensorSource,
  data: TensorData,
  count: number,
): void {
  const expected = ARRAY_OF[t.dtype];
  if (data?.constructor?.name !== expected) {
    throw new SafetensorsError(
      path,
      `data is a ${data?.constructor?.name}, expected a ${expected} for dtype ${t.dtype}`,
      name,
    );
  }
  if (data.length !== count) {
    throw new SafetensorsError(
      path,
      `data has ${data.length} elements, expected ${count} for dims [${t.dims.join(",")}]`,
      name,
    );
  }
}

/** Write one tensor's bytes, converting float32 chunk by chunk when it is stored narrower. */
async function writeTensor(
  file: Deno.FsFile,
  dtype: DType,
  data: TensorData,
  float32As: Float32Storage,
): Promise<void> {
  if (dtype === "float32") {
    const src = data as Float32Array;
    for (let at = 0; at < src.length; at += CHUNK_ELEMENTS) {
      const chunk = src.subarray(at, Math.min(src.length, at + CHUNK_ELEMENTS));
      await writeAll(file, FLOAT32_ENCODERS[float32As](chunk));
    }
    return;
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length * DTYPE_BYTES[dtype]);
  await writeAll(file, bytes);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
