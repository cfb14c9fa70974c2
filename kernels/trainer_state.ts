/**
 * The optimizer state of a training run as one safetensors file, so a run can stop and resume
 * exactly: the parameters in full float32 (the HF checkpoint beside it may be stored as BF16),
 * AdamW's first and second moments, and the number of updates applied (AdamW's bias correction
 * reads it).
 *
 * Layout of `trainer_state.safetensors`:
 * ```
 * __metadata__  format  = "sent-trainer-state"
 *               version = "1"            bumped when the layout changes; other versions are refused
 *               updates = "<n>"          updates applied so far (skipped steps do not count)
 *               graph   = "<name>"       the train step's graph name, for people reading the file
 * <param>       F32 [shape]              every trained parameter, under its graph-input name
 * adam.m.<param>, adam.v.<param>         its moments, same shape
 * ```
 * Tensors are stored exactly (F32 for float32, F64 for float64), never narrowed. The file is
 * written beside its destination and renamed into place (`writeSafetensors`), so a save killed
 * half way leaves the previous file, or none, never a partial one.
 *
 * Loading validates everything against what the train step expects before any tensor is used:
 * format and version, the update count, every expected name present, no unknown name, and each
 * tensor's stored dtype and shape. All defects are reported together in one `TrainerStateError`
 * that names the file.
 *
 * @example
 * ```ts
 * import { loadTrainerState, saveTrainerState } from "./trainer_state.ts";
 * const path = ".sent/tmp/trainer_state.safetensors";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * const w = { dtype: "float32" as const, dims: [2], data: new Float32Array([1, 2]) };
 * await saveTrainerState(path, { tensors: new Map([["w", w]]), updates: 3 });
 * const state = await loadTrainerState(path, new Map([["w", { dtype: "float32", dims: [2] }]]));
 * state.updates; // 3
 * ```
 *
 * @module
 */

import type { DType } from "./ir.ts";
import {
  openSafetensors,
  type SafetensorsDType,
  type TensorSource,
  writeSafetensors,
} from "./safetensors.ts";
import { HostTensor } from "./session.ts";

/** File name of the trainer state inside a checkpoint directory. */
export const TRAINER_STATE_FILE = "trainer_state.safetensors";

/** Value of the `format` metadata key. */
export const TRAINER_STATE_FORMAT = "sent-trainer-state";

/** Layout version written, and the only one read. */
export const TRAINER_STATE_VERSION = 1;

/** How each dtype a trainer state may hold is stored: exactly, never narrowed. */
const STORED: Readonly<Partial<Record<DType, SafetensorsDType>>> = {
  float32: "F32",
  float64: "F64",
};

/**
 * A tensor as the trainer state is given it: a `HostTensor`, or any `TensorSource` (whose data
 * may be a function called when the tensor's turn to be written comes).
 */
export type StateTensor = TensorSource;

/** What a trainer state file holds. */
export interface TrainerStateContents {
  /** Parameters and moments by name. */
  readonly tensors: ReadonlyMap<string, StateTensor>;
  /** Updates applied so far. */
  readonly updates: number;
  /** Name of the train step's graph (informational). */
  readonly graph?: string;
}

/** A tensor the loader expects: its dtype and shape. */
export interface ExpectedTensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
}

/** A trainer state file that cannot be written or restored as asked; lists every defect. */
export class TrainerStateError extends Error {
  /** The file. */
  readonly path: string;
  /** One line per defect. */
  readonly problems: readonly string[];

  constructor(path: string, problems: readonly string[]) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? [`… and ${problems.length - 20} more`] : [];
    const lines = [...shown, ...more];
    super(
      lines.length === 1
        ? `trainer state ${path}: ${lines[0]}`
        : `trainer state ${path}:\n  ${lines.join("\n  ")}`,
    );
    this.name = "TrainerStateError";
    this.path = path;
    this.problems = problems;
  }
}

/**
 * Write a trainer state file atomically (temporary file beside it, then renamed).
 *
 * @param path Destination file, e.g. `<checkpoint>/trainer_state.safetensors`.
 * @param contents Tensors, update count and graph name.
 * @throws TrainerStateError for a dtype that cannot be stored exactly or a bad update count.
 */
export async function saveTrainerState(
  path: string,
  contents: TrainerStateContents,
): Promise<void> {
  const problems: string[] = [];
  if (!Number.isSafeInteger(contents.updates) || contents.updates < 0) {
    problems.push(`update count ${contents.updates} is not a non-negative integer`);
  }
  for (const [name, t] of contents.tensors) {
    if (!STORED[t.dtype]) {
      problems.push(
        `tensor ${name} is ${t.dtype}; a trainer state holds ${Object.keys(STORED).join(" or ")}`,
      );
    }
  }
  if (problems.length > 0) throw new TrainerStateError(path, problems);
  const metadata: Record<string, string> = {
    format: TRAINER_STATE_FORMAT,
    version: String(TRAINER_STATE_VERSION),
    updates: String(contents.updates),
  };
  if (contents.graph !== undefined) metadata.graph = contents.graph;
  await writeSafetensors(path, contents.tensors, { metadata });
}

/** What {@link loadTrainerState} returns. */
export interface LoadedTrainerState {
  /** Every expected tensor, in the order of `expect`. */
  readonly tensors: Map<string, HostTensor>;
  /** Updates applied before the state was saved. */
  readonly updates: number;
  /** The metadata map as stored. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Rules over the metadata map: each returns a problem, or undefined when the key is fine. */
const METADATA_RULES: readonly ((m: Readonly<Record<string, string>>) => string | undefined)[] = [
  (m) =>
    m.format === TRAINER_STATE_FORMAT
      ? undefined
      : `metadata format is ${
        JSON.stringify(m.format ?? null)
      }, expected "${TRAINER_STATE_FORMAT}" (is this a trainer state file?)`,
  (m) =>
    m.version === String(TRAINER_STATE_VERSION)
      ? undefined
      : `metadata version is ${
        JSON.stringify(m.version ?? null)
      }, expected "${TRAINER_STATE_VERSION}" (written by another version of the trainer)`,
  (m) =>
    /^(0|[1-9][0-9]*)$/.test(m.updates ?? "") && Number.isSafeInteger(Number(m.updates))
      ? undefined
      : `metadata updates is ${JSON.stringify(m.updates ?? null)}, expected a non-negative integer`,
];

/**
 * Read and validate a trainer state file.
 *
 * @param path The file.
 * @param expect Every tensor the trainer needs, with its dtype and shape.
 * @returns The tensors (in `expect`'s order), the update count and the metadata.
 * @throws TrainerStateError naming the file and listing every defect: unreadable or malformed
 *   file, wrong format or version, bad update count, missing, unexpected or misshapen tensors,
 *   tensors stored in another dtype.
 */
export async function loadTrainerState(
  path: string,
  expect: ReadonlyMap<string, ExpectedTensor>,
): Promise<LoadedTrainerState> {
  let file;
  try {
    file = await openSafetensors(path);
  } catch (e) {
    const message = (e as Error).message;
    // SafetensorsError messages already start with the path.
    throw new TrainerStateError(path, [
      message.startsWith(`${path}: `) ? message.slice(path.length + 2) : `cannot read: ${message}`,
    ]);
  }
  try {
    const metadata = file.metadata;
    const problems: string[] = [];
    for (const rule of METADATA_RULES) {
      const p = rule(metadata);
      if (p) problems.push(p);
    }
    const present = new Set(file.names());
    for (const [name, want] of expect) {
      if (!present.has(name)) {
        problems.push(
          `missing tensor ${name}: expected ${describe(STORED[want.dtype], want.dims)}`,
        );
        continue;
      }
      const got = file.info(name);
      const stored = STORED[want.dtype];
      if (got.dtype !== stored || !sameDims(got.dims, want.dims)) {
        problems.push(
          `tensor ${name} is ${describe(got.dtype, got.dims)}, expected ${
            describe(stored, want.dims)
          }`,
        );
      }
    }
    for (const name of present) {
      if (!expect.has(name)) problems.push(`unexpected tensor ${name} (not a state of this step)`);
    }
    if (problems.length > 0) throw new TrainerStateError(path, problems);
    const tensors = new Map<string, HostTensor>();
    for (const [name, want] of expect) {
      const t = await file.read(name);
      tensors.set(name, new HostTensor(want.dtype, want.dims, t.data));
    }
    return { tensors, updates: Number(metadata.updates), metadata };
  } finally {
    file.close();
  }
}

function describe(dtype: string | undefined, dims: readonly number[]): string {
  return `${dtype ?? "?"} [${dims.join(",")}]`;
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
