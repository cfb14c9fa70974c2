/**
 * Checkpoints in the Hugging Face layout: a directory with `config.json` and the weights as one
 * `model.safetensors` or as shards listed by `model.safetensors.index.json`.
 *
 * ```
 * dir/config.json                          model hyper-parameters (parsed, returned as is)
 * dir/model.safetensors                    all tensors, HF names (model.layers.0.self_attn.q_proj.weight)
 *   or
 * dir/model.safetensors.index.json         {"metadata": {"total_size": bytes}, "weight_map": {name: shard}}
 * dir/model-00001-of-00002.safetensors     the shards named by the index
 * ```
 *
 * As in transformers, a single `model.safetensors` wins over an index when both exist. Shard paths
 * from an index must stay inside the directory: absolute paths, `..` segments and symlinks that
 * resolve outside it are refused (in a hub-cache snapshot, symlinks into the cached repository's
 * `blobs/` are fine). Pickle weights (`pytorch_model.bin`, `*.pt`) are refused with a
 * message saying that only safetensors are loaded.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = ".sent/tmp/example-checkpoint";
 * await saveCheckpoint(dir, { model_type: "qwen2", hidden_size: 4 }, {
 *   "model.norm.weight": { dtype: "float32", dims: [4], data: new Float32Array([1, 1, 1, 1]) },
 * }, { float32As: "BF16" });
 * const { config, tensors } = await loadCheckpoint(dir, {
 *   expect: new Map([["model.norm.weight", [4]]]),
 * });
 * ```
 *
 * @module
 */

import { isAbsolute, join, sep } from "node:path";
import type { ConstTensor } from "./ir.ts";
import {
  type Float32Storage,
  openSafetensors,
  PICKLE_EXTENSIONS,
  type SafetensorsFile,
  storedBytes,
  type TensorInfo,
  type TensorSource,
  writeSafetensors,
} from "./safetensors.ts";

/** File names of the layout. */
export const CONFIG_FILE = "config.json";
/** Single-file weights. */
export const WEIGHTS_FILE = "model.safetensors";
/** Index of sharded weights. */
export const INDEX_FILE = "model.safetensors.index.json";

/** Shard size above which `saveCheckpoint` splits the weights (transformers' default, 5 GB). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** Weight files we recognise but refuse: pickle formats and their indexes. */
const PICKLE_NAMES: readonly string[] = ["pytorch_model.bin", "pytorch_model.bin.index.json"];

/** A checkpoint that cannot be loaded as asked; `problems` lists every defect found. */
export class CheckpointError extends Error {
  /** The checkpoint directory. */
  readonly dir: string;
  /** One line per defect (missing, extra or misshapen tensor, bad shard path, …). */
  readonly problems: readonly string[];

  constructor(dir: string, problems: readonly string[]) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? [`… and ${problems.length - 20} more`] : [];
    super(`checkpoint ${dir}:\n  ${[...shown, ...more].join("\n  ")}`);
    this.name = "CheckpointError";
    this.dir = dir;
    this.problems = problems;
  }
}

/** Parsed `config.json`; the model code reads the fields it knows. */
export type CheckpointConfig = Record<string, unknown>;

/** Where a tensor of a checkpoint lives. */
export interface CheckpointTensorInfo extends TensorInfo {
  /** The safetensors file (shard) holding it. */
  readonly file: string;
}

/** An open checkpoint: the config plus lazy access to every tensor, one at a time. */
export class CheckpointReader {
  /** The directory. */
  readonly dir: string;
  /** Parsed `config.json`. */
  readonly config: CheckpointConfig;
  readonly #files: readonly SafetensorsFile[];
  readonly #owner: ReadonlyMap<string, SafetensorsFile>;

  constructor(
    dir: string,
    config: CheckpointConfig,
    files: readonly SafetensorsFile[],
    owner: ReadonlyMap<string, SafetensorsFile>,
  ) {
    this.dir = dir;
    this.config = config;
    this.#files = files;
    this.#owner = owner;
  }

  /** Tensor names, shard by shard in data order. */
  names(): string[] {
    return [...this.#owner.keys()];
  }

  /**
   * Header entry of a tensor and the file that holds it.
   *
   * @param name Tensor name.
   * @returns Stored dtype, shape, byte span and file.
   * @throws CheckpointError when no shard holds the tensor.
   */
  info(name: string): CheckpointTensorInfo {
    const file = this.#owner.get(name);
    if (file === undefined) throw new CheckpointError(this.dir, [`no tensor named ${name}`]);
    return { ...file.info(name), file: file.path };
  }

  /**
   * Read one tensor (16-bit floats are converted to float32).
   *
   * @param name Tensor name.
   * @returns The tensor.
   */
  read(name: string): Promise<ConstTensor> {
    const file = this.#owner.get(name);
    if (file === undefined) {
      return Promise.reject(new CheckpointError(this.dir, [`no tensor named ${name}`]));
    }
    return file.read(name);
  }

  /** Close every shard. */
  close(): void {
    for (const f of this.#files) f.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readJson(dir: string, path: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(dir, [`${path} is not valid JSON: ${(e as Error).message}`]);
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * The folder shard files must resolve into: the checkpoint directory itself, or, for a snapshot
 * of the Hugging Face hub cache (`…/models--org--name/snapshots/<revision>`), the cached
 * repository folder, because the snapshot's files are symlinks into its `blobs/`.
 */
function containmentRoot(realDir: string): string {
  const parts = realDir.split(sep);
  const n = parts.length;
  const inHubCache = n >= 3 && parts[n - 2] === "snapshots" && parts[n - 3].startsWith("models--");
  return inHubCache ? parts.slice(0, n - 2).join(sep) : realDir;
}

/**
 * Resolve a shard path from an index, refusing anything that leaves the directory.
 *
 * @param dir The checkpoint directory.
 * @param shard The path as written in the index.
 * @returns The shard's real path inside `dir`.
 * @throws CheckpointError naming the path when it is absolute, climbs with `..`, is missing, or
 *   is a symlink resolving outside `dir` (outside the cached repository for a hub-cache snapshot).
 */
export async function resolveShard(dir: string, shard: string): Promise<string> {
  const segments = shard.split(/[\\/]/);
  const bad = shard === ""
    ? "is empty"
    : isAbsolute(shard) || /^[A-Za-z]:/.test(shard) || shard.startsWith("\\")
    ? "is absolute"
    : segments.includes("..")
    ? 'contains a ".." segment'
    : undefined;
  if (bad !== undefined) {
    throw new CheckpointError(dir, [
      `shard path ${JSON.stringify(shard)} ${bad}; expected a file name inside the checkpoint`,
    ]);
  }
  const root = containmentRoot(await Deno.realPath(dir));
  let real: string;
  try {
    real = await Deno.realPath(join(dir, shard));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new CheckpointError(dir, [
      `shard ${JSON.stringify(shard)} named by ${INDEX_FILE} is missing`,
    ]);
  }
  if (!real.startsWith(root + sep)) {
    throw new CheckpointError(dir, [
      `shard ${JSON.stringify(shard)} resolves to ${real}, outside ${root}; ` +
      "shard paths must stay inside the checkpoint directory",
    ]);
  }
  return real;
}

/** Parse the index: tensor name → shard path as written. */
function parseIndex(dir: string, raw: unknown): Map<string, string> {
  const where = `${INDEX_FILE}`;
  if (!isObject(raw) || !isObject(raw.weight_map)) {
    throw new CheckpointError(dir, [`${where} has no "weight_map" object`]);
  }
  const map = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, shard] of Object.entries(raw.weight_map)) {
    if (typeof shard === "string") map.set(name, shard);
    else {problems.push(
        `${where}: weight_map["${name}"] is ${JSON.stringify(shard)}, expected a file name`,
      );}
  }
  if (problems.length > 0) throw new CheckpointError(dir, problems);
  return map;
}

/** Refuse a directory that only has pickle weights, explaining why. */
async function refusePickleDir(dir: string): Promise<never> {
  const pickles: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (PICKLE_NAMES.includes(e.name) || PICKLE_EXTENSIONS.some((x) => e.name.endsWith(x))) {
      pickles.push(e.name);
    }
  }
  if (pickles.length > 0) {
    throw new CheckpointError(dir, [
      `has only pickle weights (${pickles.sort().join(", ")}); only safetensors are loaded, ` +
      "because unpickling can run arbitrary code. Convert once with a trusted tool, e.g. " +
      "transformers' save_pretrained(dir, safe_serialization=True)",
    ]);
  }
  throw new CheckpointError(dir, [`has neither ${WEIGHTS_FILE} nor ${INDEX_FILE}`]);
}

/**
 * Open a checkpoint directory: parse `config.json`, validate every shard's header, and map each
 * tensor to its shard. No tensor data is read.
 *
 * @param dir The checkpoint directory.
 * @returns A reader; close it when done.
 * @throws CheckpointError for a missing config, missing weights, pickle-only weights, a malformed
 *   index, unsafe shard paths, or tensors the index and the shards disagree on.
 *
 * @example
 * ```ts
 * import { openCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = ".sent/tmp/open-checkpoint-example";
 * await saveCheckpoint(dir, { model_type: "qwen2" }, {
 *   "model.embed_tokens.weight": { dtype: "float32", dims: [4, 2], data: new Float32Array(8) },
 * });
 * using ckpt = await openCheckpoint(dir);
 * const embed = await ckpt.read("model.embed_tokens.weight");
 * embed.dims; // [4, 2]
 * ```
 */
export async function openCheckpoint(dir: string): Promise<CheckpointReader> {
  const configPath = join(dir, CONFIG_FILE);
  if (!await exists(configPath)) throw new CheckpointError(dir, [`has no ${CONFIG_FILE}`]);
  const config = await readJson(dir, configPath);
  if (!isObject(config)) throw new CheckpointError(dir, [`${CONFIG_FILE} is not a JSON object`]);

  if (await exists(join(dir, WEIGHTS_FILE))) {
    const file = await openSafetensors(join(dir, WEIGHTS_FILE));
    return new CheckpointReader(dir, config, [file], new Map(file.names().map((n) => [n, file])));
  }
  if (!await exists(join(dir, INDEX_FILE))) return await refusePickleDir(dir);

  const weightMap = parseIndex(dir, await readJson(dir, join(dir, INDEX_FILE)));
  const byShard = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(weightMap.values())) {
      byShard.set(shard, await openSafetensors(await resolveShard(dir, shard)));
    }
    const owner = new Map<string, SafetensorsFile>();
    const problems: string[] = [];
    for (const [name, shard] of weightMap) {
      const file = byShard.get(shard)!;
      if (file.has(name)) owner.set(name, file);
      else problems.push(`${INDEX_FILE} puts tensor ${name} in ${shard}, which does not hold it`);
    }
    for (const [shard, file] of byShard) {
      for (const name of file.names()) {
        if (weightMap.get(name) !== shard) {
          problems.push(`${shard} holds tensor ${name}, which ${INDEX_FILE} does not assign to it`);
        }
      }
    }
    if (problems.length > 0) throw new CheckpointError(dir, problems);
    return new CheckpointReader(dir, config, [...byShard.values()], owner);
  } catch (e) {
    for (const f of byShard.values()) f.close();
    throw e;
  }
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /** Tensors the model needs, with their shapes; each must be present with exactly that shape. */
  expect?: ReadonlyMap<string, readonly number[]>;
  /**
   * Tensors not in `expect` are an error unless allowed here: `true` allows all, a function
   * allows the names it returns true for (e.g. `rotary_emb.inv_freq` buffers). Default false.
   */
  allowExtra?: boolean | ((name: string) => boolean);
}

/** A loaded checkpoint. */
export interface LoadedCheckpoint {
  /** Parsed `config.json`. */
  config: CheckpointConfig;
  /** Tensors by HF name; with `expect`, exactly the expected ones. */
  tensors: Map<string, ConstTensor>;
}

/**
 * Check a checkpoint's tensor names and shapes against what a model expects.
 *
 * @param reader An open checkpoint.
 * @param expect Expected tensors and shapes.
 * @param allowExtra Which unexpected tensors to tolerate.
 * @returns One line per missing, misshapen or unexpected tensor (empty when all is well).
 */
export function checkpointProblems(
  reader: CheckpointReader,
  expect: ReadonlyMap<string, readonly number[]>,
  allowExtra: boolean | ((name: string) => boolean) = false,
): string[] {
  const problems: string[] = [];
  const present = new Set(reader.names());
  for (const [name, shape] of expect) {
    if (!present.has(name)) {
      problems.push(`missing tensor ${name}: expected shape [${shape.join(",")}]`);
      continue;
    }
    const info = reader.info(name);
    if (info.dims.length !== shape.length || info.dims.some((d, k) => d !== shape[k])) {
      problems.push(
        `tensor ${name} has shape [${info.dims.join(",")}] (${info.dtype} in ${info.file}), ` +
          `expected [${shape.join(",")}]`,
      );
    }
  }
  const allowed = typeof allowExtra === "function" ? allowExtra : () => allowExtra;
  for (const name of present) {
    if (!expect.has(name) && !allowed(name)) {
      problems.push(`unexpected tensor ${name} [${reader.info(name).dims.join(",")}]`);
    }
  }
  return problems;
}

/**
 * Load a checkpoint: config plus every tensor, 16-bit floats converted to float32. With `expect`,
 * names and shapes are checked from the headers before any data is read, and only the expected
 * tensors are loaded.
 *
 * @param dir The checkpoint directory.
 * @param options Expected tensors and which extras to tolerate.
 * @returns The parsed config and the tensors.
 * @throws CheckpointError listing every missing, misshapen or unexpected tensor.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dir = ".sent/tmp/load-checkpoint-example";
 * await saveCheckpoint(dir, { model_type: "qwen2" }, {
 *   "model.embed_tokens.weight": { dtype: "float32", dims: [32, 64], data: new Float32Array(2048) },
 *   "model.rotary_emb.inv_freq": { dtype: "float32", dims: [8], data: new Float32Array(8) },
 * });
 * const { config, tensors } = await loadCheckpoint(dir, {
 *   expect: new Map([["model.embed_tokens.weight", [32, 64]]]),
 *   allowExtra: (name) => name.endsWith("rotary_emb.inv_freq"),
 * });
 * config.model_type; // "qwen2"
 * tensors.has("model.embed_tokens.weight"); // true
 * ```
 */
export async function loadCheckpoint(
  dir: string,
  options: LoadCheckpointOptions = {},
): Promise<LoadedCheckpoint> {
  using reader = await openCheckpoint(dir);
  const { expect } = options;
  if (expect !== undefined) {
    const problems = checkpointProblems(reader, expect, options.allowExtra ?? false);
    if (problems.length > 0) throw new CheckpointError(dir, problems);
  }
  const tensors = new Map<string, ConstTensor>();
  for (const name of expect?.keys() ?? reader.names()) tensors.set(name, await reader.read(name));
  return { config: reader.config, tensors };
}

// ----- saving ----------------------------------------------------------------------------------

/** Options of {@link saveCheckpoint}. */
export interface SaveCheckpointOptions {
  /** Store float32 tensors as F32 (default), BF16 or F16. */
  float32As?: Float32Storage;
  /** Split the weights into shards when they exceed this many bytes (default 5 GB). */
  maxShardBytes?: number;
  /** Extra `__metadata__` entries; `format: "pt"` is always set, as transformers requires. */
  metadata?: Readonly<Record<string, string>>;
}

/** What {@link saveCheckpoint} wrote. */
export interface SavedCheckpoint {
  /** Weight files, relative to the directory. */
  files: string[];
  /** Bytes of tensor data (the index's `total_size`). */
  totalBytes: number;
}

/** Compare names with digit runs as numbers, so layer 2 sorts before layer 10. */
export function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let k = 0; k < Math.min(pa.length, pb.length); k++) {
    if (pa[k] === pb[k]) continue;
    const numeric = k % 2 === 1;
    if (numeric && Number(pa[k]) !== Number(pb[k])) return Number(pa[k]) - Number(pb[k]);
    return pa[k] < pb[k] ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** JSON with object keys sorted at every level, two-space indent, final newline. */
function canonicalJson(value: unknown): string {
  const sortKeys = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sortKeys)
      : isObject(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
      : v;
  return JSON.stringify(sortKeys(value), null, 2) + "\n";
}

let tempCounter = 0;

async function writeTextAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${Deno.pid}-${tempCounter++}.tmp`;
  await Deno.writeTextFile(temp, text);
  await Deno.rename(temp, path);
}

/** Shard file name as transformers writes it: model-00001-of-00003.safetensors. */
function shardName(k: number, n: number): string {
  const pad = (x: number) => String(x).padStart(5, "0");
  return `model-${pad(k + 1)}-of-${pad(n)}.safetensors`;
}

/**
 * Save a checkpoint in the HF layout: `config.json` plus `model.safetensors`, or shards and
 * `model.safetensors.index.json` when the weights exceed `maxShardBytes`. Each file is written
 * atomically and tensors are produced and written one at a time (pass functions as `data` to
 * stream). Weight files of the other layout left by an earlier save are removed, so the
 * directory never holds two disagreeing sets of weights.
 *
 * @param dir Directory (created if needed).
 * @param config The `config.json` content (keys are written sorted).
 * @param tensors Tensors by HF name.
 * @param options Storage dtype, shard size and metadata.
 * @returns The weight files written and the total tensor bytes.
 *
 * @example
 * ```ts
 * import { saveCheckpoint } from "./checkpoint.ts";
 * await saveCheckpoint(".sent/tmp/ckpt", { model_type: "qwen2" }, {
 *   "lm_head.weight": { dtype: "float32", dims: [8, 4], data: new Float32Array(32) },
 * }, { float32As: "BF16" });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  config: CheckpointConfig,
  tensors: ReadonlyMap<string, TensorSource> | Readonly<Record<string, TensorSource>>,
  options: SaveCheckpointOptions = {},
): Promise<SavedCheckpoint> {
  const float32As = options.float32As ?? "F32";
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const metadata = { ...options.metadata, format: "pt" };
  const entries: [string, TensorSource][] = tensors instanceof Map
    ? [...tensors.entries()]
    : Object.entries(tensors as Record<string, TensorSource>);
  entries.sort(([a], [b]) => naturalCompare(a, b));
  await Deno.mkdir(dir, { recursive: true });

  // Greedy shards in name order; a tensor larger than the limit gets a shard of its own.
  const shards: [string, TensorSource][][] = [[]];
  let shardBytes = 0;
  let totalBytes = 0;
  for (const entry of entries) {
    const bytes = storedBytes(entry[1], float32As);
    if (shardBytes > 0 && shardBytes + bytes > maxShardBytes) {
      shards.push([]);
      shardBytes = 0;
    }
    shards.at(-1)!.push(entry);
    shardBytes += bytes;
    totalBytes += bytes;
  }

  const previous = await previousWeightFiles(dir);
  const files = shards.length === 1
    ? [WEIGHTS_FILE]
    : shards.map((_, k) => shardName(k, shards.length));
  for (let k = 0; k < shards.length; k++) {
    await writeSafetensors(join(dir, files[k]), new Map(shards[k]), { float32As, metadata });
  }
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    shards.forEach((s, k) => s.forEach(([name]) => weightMap[name] = files[k]));
    await writeTextAtomic(
      join(dir, INDEX_FILE),
      JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2) +
        "\n",
    );
  }
  const stale = previous.filter((f) => !files.includes(f));
  if (shards.length === 1) stale.push(INDEX_FILE);
  for (const f of stale) await Deno.remove(join(dir, f)).catch(() => undefined);
  await writeTextAtomic(join(dir, CONFIG_FILE), canonicalJson(config));
  return { files, totalBytes };
}

/** Weight files of an earlier save in `dir`: model.safetensors and the shards of its index. */
async function previousWeightFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  if (await exists(join(dir, WEIGHTS_FILE))) found.push(WEIGHTS_FILE);
  if (await exists(join(dir, INDEX_FILE))) {
    try {
      const map = parseIndex(dir, await readJson(dir, join(dir, INDEX_FILE)));
      for (const shard of new Set(map.values())) {
        if (!shard.includes("/") && !shard.includes("\\") && shard !== "..") found.push(shard);
      }
    } catch {
      // An unreadable old index is replaced or removed below; its shards are left alone.
    }
  }
  return found;
}
