/**
 * Run records and the lock file, kept in the state directory beside the store (`.sent/` for the
 * default store `.sent/store`).
 *
 * - `runs/<timestamp>-<id>.json`: one per run — command, config, every node's key and outcome.
 * - `sent.lock.json`: node id → key and inputs of the last successful run; it pins which
 *   artifacts a report came from, and `status` compares against it to explain staleness.
 *
 * @module
 */

import type { NodeInputs } from "./cache_key.ts";

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

/** Name of the lock file in the state directory. */
export const LOCK_FILE = "sent.lock.json";

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
  for (const name of names.slice(0, limit)) {
    try {
      records.push(JSON.parse(await Deno.readTextFile(`${stateDir}/runs/${name}`)));
    } catch {
      // A record cut short by a kill: ignore it.
    }
  }
  return records;
}

/**
 * Read the lock file.
 * @param stateDir State directory.
 * @returns The lock file, or `null` when there is none yet.
 */
export async function readLockFile(stateDir: string): Promise<LockFile | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${stateDir}/${LOCK_FILE}`)) as LockFile;
  } catch {
    return null;
  }
}

/**
 * Write the lock file atomically.
 * @param stateDir State directory.
 * @param lock Contents.
 */
export async function writeLockFile(stateDir: string, lock: LockFile): Promise<void> {
  await writeJsonAtomic(`${stateDir}/${LOCK_FILE}`, lock);
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
