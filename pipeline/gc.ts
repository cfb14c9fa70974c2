/**
 * Garbage collection: delete artifacts (and scratch directories) that neither the lock file
 * nor one of the most recent successful runs refers to.
 *
 * What gc may delete is narrow on purpose: only folders the store recognises as artifacts (a
 * `manifest.json` that parses and names the folder's own stage and key), in a directory marked
 * as a store (`store.json`, checked by `openStore`). Anything else it finds is reported and left
 * alone. Failed and interrupted runs do not count towards the runs kept, so a series of failures
 * cannot push the artifacts of good runs out; the scratch directories of runs newer than the last
 * successful one are kept too, since the next run resumes from them.
 *
 * @module
 */

import { listRunRecords, LOCK_FILE, readLockFile, type RunRecord } from "./records.ts";
import { type ArtifactStore, directoryBytes } from "./store.ts";

/** Options for {@link collectGarbage}. */
export interface GcOptions {
  /** State directory (run records). */
  stateDir: string;
  /** The lock file. Default: `sent.lock.json` in the state directory. */
  lockFile?: string;
  /** How many recent successful run records keep their artifacts. Default 5. */
  keepRuns?: number;
  /** List what would be removed without removing it. */
  dryRun?: boolean;
}

/** What gc removed (or would remove). */
export interface GcResult {
  /** Removed artifacts and scratch dirs: `stage/key`, bytes. */
  removed: { what: string; bytes: number }[];
  /** Artifacts kept. */
  kept: number;
  /** Store-relative paths that are not artifacts, left alone. */
  strays: string[];
}

/**
 * Remove unreferenced artifacts. Call while holding the store lock.
 *
 * @param store The store (opened with `openStore(root, "collect")`).
 * @param options State directory, how many runs to keep, dry run.
 * @returns What was removed, how many artifacts remain, and what was left alone.
 */
export async function collectGarbage(store: ArtifactStore, options: GcOptions): Promise<GcResult> {
  const records = await listRunRecords(options.stateDir);
  const referenced = new Set<string>();
  const lock = await readLockFile(options.lockFile ?? `${options.stateDir}/${LOCK_FILE}`);
  for (const entry of Object.values(lock?.nodes ?? {})) {
    referenced.add(`${entry.stage}/${entry.key}`);
  }
  const successful = records.filter((record) => record.status === "ok");
  for (const record of successful.slice(0, options.keepRuns ?? 5)) addNodes(referenced, record);
  // Runs after the last successful one (failed or killed): their scratch is work to resume.
  const resumable = new Set(referenced);
  const newestOk = successful[0]?.id ?? "";
  for (const record of records.filter((record) => record.id > newestOk)) {
    addNodes(resumable, record);
  }

  const removed: GcResult["removed"] = [];
  let kept = 0;
  const { artifacts, strays } = await store.scan();
  for (const artifact of artifacts) {
    const id = `${artifact.stage}/${artifact.key}`;
    if (referenced.has(id)) {
      kept++;
      continue;
    }
    removed.push({ what: `${id}`, bytes: await directoryBytes(artifact.dir) });
    if (!options.dryRun) await store.discard(artifact.stage, artifact.key);
  }
  for (const scratch of await store.listScratch()) {
    if (resumable.has(`${scratch.stage}/${scratch.key}`)) continue;
    removed.push({
      what: `scratch ${scratch.stage}/${scratch.key}`,
      bytes: await directoryBytes(scratch.dir),
    });
    if (!options.dryRun) await Deno.remove(scratch.dir, { recursive: true });
  }
  if (!options.dryRun) await store.cleanLeftovers();
  return { removed, kept, strays };
}

function addNodes(into: Set<string>, record: RunRecord): void {
  for (const node of record.nodes) {
    into.add(`${node.stage}/${node.key}`);
    // A sharded node's shards live in its stage's folder: kept as long as the run is.
    for (const shard of node.shards ?? []) into.add(`${node.stage}/${shard.key}`);
  }
}
