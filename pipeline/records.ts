/**
 * Run records and the lock file ({@link statePaths} says where each lives).
 *
 * - `runs/<timestamp>-<id>.json`, in the state directory beside the store (`.sent/` for the
 *   default store `.sent/store`): one per run — command, config, every node's key and outcome.
 * - `sent.lock.json`: node id → key and inputs of the last successful run; it pins which
 *   artifacts a report came from, and `status` compares against it to explain staleness. The
 *   default store's lock file is at the project root, outside the git-ignored `.sent/`, so that
 *   it can be committed with the report it pins; any other store's is beside that store.
 *
 * These files are state, not cache: one that does not parse or has the wrong shape is a
 * {@link StateFileError} naming the file and how to recover, never read as "missing" (a lock
 * file taken for missing would make `gc` delete what it pins).
 *
 * @module
 */

import type { NodeInputs } from "./cache_key.ts";
import { UsageError } from "./errors.ts";

/** What happened to a node in a run. */
export type NodeState = "cached" | "ran" | "recomputed" | "failed" | "skipped" | "planned";

/** One node's line in a run record. */
export interface NodeOutcome {
  /** Node id. */
  node: string;
  /** Stage name. */
  stage: string;
  /** Cache key. */
  key: string;
  /** Outcome. */
  state: NodeState;
  /** Why it ran (or would run). */
  reason: string;
  /** Seconds spent (0 when cached). */
  seconds: number;
  /** Error message when failed. */
  error?: string;
  /** A sharded node's shards, in shard order (absent for a node that ran whole). */
  shards?: ShardOutcome[];
}

/** What happened to one shard of a sharded node in a run. */
export interface ShardOutcome {
  /** Shard id, e.g. `score#3/8`. */
  shard: string;
  /** Cache key of the shard's artifact (in the node's stage folder). */
  key: string;
  /** Outcome. */
  state: NodeState;
  /** Why it ran (or would run, or did not). */
  reason: string;
  /** Seconds spent (0 when cached). */
  seconds: number;
  /** Error message when failed. */
  error?: string;
  /** Submissions it took (SLURM resubmits failed shards), when more than one. */
  attempts?: number;
}

/** A run record. */
export interface RunRecord {
  /** Run id (`<timestamp>-<random>`, e.g. `20250101T120000.123Z-a1b2c3`). */
  id: string;
  /** CLI command and arguments. */
  argv: string[];
  /** Preset name. */
  preset: string;
  /** `--set` overrides. */
  overrides: readonly string[];
  /** ISO start and end. */
  startedAt: string;
  /** ISO end time. */
  finishedAt: string;
  /** "running" while in progress (and forever if the run was killed), then "ok" or "failed". */
  status: "running" | "ok" | "failed";
  /** Node outcomes in execution order. */
  nodes: NodeOutcome[];
  /** Tool versions. */
  versions: Record<string, string>;
}

/** One node in the lock file. */
export interface LockEntry {
  /** Stage name. */
  stage: string;
  /** Cache key. */
  key: string;
  /** What the key was computed from. */
  inputs: NodeInputs;
}

/** `sent.lock.json`. */
export interface LockFile {
  /** Format version. */
  format: 1;
  /** Run that last wrote it. */
  run: string;
  /** ISO time of that write. */
  updatedAt: string;
  /** Preset of that run. */
  preset: string;
  /** Node id → key and inputs. */
  nodes: Record<string, LockEntry>;
}

/** Name of the lock file. */
export const LOCK_FILE = "sent.lock.json";

/** The default store, relative to the project root. */
export const DEFAULT_STORE = ".sent/store";

/** Where a store's state lives. */
export interface StatePaths {
  /** Absolute store directory. */
  store: string;
  /** Directory beside the store that holds `runs/`. */
  stateDir: string;
  /** The lock file. */
  lockFile: string;
}

/** A state file (lock file, run record, store marker) that cannot be read as what it should be. */
export class StateFileError extends UsageError {
  /** The file. */
  readonly path: string;

  /**
   * @param path The file.
   * @param message The whole message, naming the file, the problem and the way out.
   */
  constructor(path: string, message: string) {
    super(message);
    this.name = "StateFileError";
    this.path = path;
  }
}

/**
 * Where a store's run records and lock file live.
 *
 * @param projectRoot Absolute project root.
 * @param store `--store` as given (relative to the project root), default `.sent/store`.
 * @returns Store, state directory and lock file, absolute and normalised.
 * @example
 * ```ts
 * import { statePaths } from "./records.ts";
 * statePaths("/p").lockFile; // "/p/sent.lock.json"
 * statePaths("/p", "/data/store").lockFile; // "/data/sent.lock.json"
 * ```
 */
export function statePaths(projectRoot: string, store: string = DEFAULT_STORE): StatePaths {
  const root = normalise(projectRoot);
  const absolute = normalise(store.startsWith("/") ? store : `${root}/${store}`);
  const stateDir = absolute.replace(/\/[^/]+$/, "") || "/";
  const isDefault = absolute === `${root}/${DEFAULT_STORE}`;
  return {
    store: absolute,
    stateDir,
    lockFile: isDefault ? `${root}/${LOCK_FILE}` : `${stateDir}/${LOCK_FILE}`,
  };
}

function normalise(path: string): string {
  return new URL(`file://${path}`).pathname.replace(/\/$/, "") || "/";
}

/**
 * A new run id: UTC timestamp to the millisecond (so ids sort by start time) plus 6 random
 * hex digits.
 * @param date Start time.
 * @returns E.g. `20250101T120000.123Z-a1b2c3`.
 */
export function newRunId(date = new Date()): string {
  const stamp = date.toISOString().replace(/[-:]/g, "");
  const random = crypto.getRandomValues(new Uint8Array(3));
  return `${stamp}-${[...random].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Write a run record.
 * @param stateDir State directory.
 * @param record The record.
 * @returns The file path.
 */
export async function writeRunRecord(stateDir: string, record: RunRecord): Promise<string> {
  const path = `${stateDir}/runs/${record.id}.json`;
  await writeJsonAtomic(path, record);
  return path;
}

/**
 * Run records, newest first.
 * @param stateDir State directory.
 * @param limit At most this many.
 * @returns Records (unreadable files are skipped).
 */
export async function listRunRecords(stateDir: string, limit = Infinity): Promise<RunRecord[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(`${stateDir}/runs`)) {
      if (entry.isFile && entry.name.endsWith(".json")) names.push(entry.name);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  names.sort().reverse();
  const records: RunRecord[] = [];
  // Records are written whole (temp file + rename), so one that does not parse was damaged.
  for (const name of names.slice(0, limit)) {
    const path = `${stateDir}/runs/${name}`;
    records.push(
      await readState(
        path,
        runRecordProblem,
        (why) =>
          `run record ${path} is not valid (${why}); delete it: it only describes a past run ` +
          "(gc then no longer keeps what that run used)",
      ) as RunRecord,
    );
  }
  return records;
}

/**
 * Read the lock file.
 * @param lockFile Path of `sent.lock.json` ({@link statePaths}).
 * @returns The lock file, or `null` when there is none yet.
 * @throws {StateFileError} When it exists but is not a valid lock file.
 */
export async function readLockFile(lockFile: string): Promise<LockFile | null> {
  try {
    await Deno.lstat(lockFile);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  return await readState(
    lockFile,
    lockFileProblem,
    (why) =>
      `${lockFile} is not a valid lock file (${why}); restore it (git checkout) or delete it: ` +
      "the next successful reproduce writes a new one, and until then status reports every " +
      "node as new and gc keeps only what recent successful runs used",
  ) as LockFile;
}

/**
 * Write the lock file atomically.
 * @param lockFile Path of `sent.lock.json`.
 * @param lock Contents.
 */
export async function writeLockFile(lockFile: string, lock: LockFile): Promise<void> {
  await writeJsonAtomic(lockFile, lock);
}

/** Read a JSON state file and check its shape; any problem is a {@link StateFileError}. */
async function readState(
  path: string,
  problemOf: (value: unknown) => string | null,
  message: (why: string) => string,
): Promise<unknown> {
  let value: unknown;
  try {
    value = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new StateFileError(path, message(`not JSON: ${error.message}`));
  }
  const problem = problemOf(value);
  if (problem !== null) throw new StateFileError(path, message(problem));
  return value;
}

const KEY = /^[0-9a-f]{64}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What is wrong with a parsed lock file, or `null`. */
function lockFileProblem(value: unknown): string | null {
  if (!isObject(value)) return "not a JSON object";
  if (value.format !== 1) return `format is ${JSON.stringify(value.format)}; expected 1`;
  if (!isObject(value.nodes)) return '"nodes" is not an object';
  for (const [id, entry] of Object.entries(value.nodes)) {
    if (!isObject(entry)) return `node ${id} is not an object`;
    if (typeof entry.stage !== "string") return `node ${id} has no stage name`;
    if (typeof entry.key !== "string" || !KEY.test(entry.key)) {
      return `node ${id} has key ${JSON.stringify(entry.key)}; expected 64 hex digits`;
    }
    if (!isObject(entry.inputs)) return `node ${id} has no inputs`;
  }
  return null;
}

/** What is wrong with a parsed run record, or `null`. */
function runRecordProblem(value: unknown): string | null {
  if (!isObject(value)) return "not a JSON object";
  if (typeof value.id !== "string") return '"id" is not a string';
  if (!["running", "ok", "failed"].includes(value.status as string)) {
    return `status is ${JSON.stringify(value.status)}; expected running, ok or failed`;
  }
  if (!Array.isArray(value.nodes)) return '"nodes" is not a list';
  for (const node of value.nodes) {
    if (!isObject(node) || typeof node.stage !== "string" || typeof node.key !== "string") {
      return `node ${JSON.stringify(node)} lacks a stage or key`;
    }
  }
  return null;
}

/**
 * Write JSON through a temp file and rename, so readers never see half a file.
 * @param path Target path.
 * @param value JSON value.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  const temp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(temp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(temp, temp.replace(/\.\d+\.tmp$/, ""));
}
