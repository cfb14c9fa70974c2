/**
 * Garbage collection: delete artifacts (and scratch directories) that neither the lock file
 * nor one of the most recent run records refers to.
 *
 * @module
 */

import { listRunRecords, readLockFile } from "./records.ts";
import { type ArtifactStore, directoryBytes } from "./store.ts";

/** Options for {@link collectGarbage}. */
export interface GcOptions {
  /** State directory (lock file, run records). */
  stateDir: string;
  /** How many recent run records keep their artifacts. Default 5. */
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
}

/**
 * Remove unreferenced artifacts. Call while holding the store lock.
 *
 * @param store The store.
 * @param options State directory, how many runs to keep, dry run.
 * @returns What was removed and how many artifacts remain.
 */
export async function collectGarbage(store: ArtifactStore, options: GcOptions): Promise<GcResult> {
  const referenced = new Set<string>();
  const lock = await readLockFile(options.stateDir);
  for (const entry of Object.values(lock?.nodes ?? {})) {
    referenced.add(`${entry.stage}/${entry.key}`);
  }
  for (const record of await listRunRecords(options.stateDir, options.keepRuns ?? 5)) {
    for (const node of record.nodes) referenced.add(`${node.stage}/${node.key}`);
  }
  const removed: GcResult["removed"] = [];
  let kept = 0;
  for (const artifact of await store.list()) {
    const id = `${artifact.stage}/${artifact.key}`;
    if (referenced.has(id)) {
      kept++;
      continue;
    }
    removed.push({ what: `${id}`, bytes: await directoryBytes(artifact.dir) });
    if (!options.dryRun) await store.discard(artifact.stage, artifact.key);
  }
  for (const scratch of await store.listScratch()) {
    if (referenced.has(`${scratch.stage}/${scratch.key}`)) continue;
    removed.push({
      what: `scratch ${scratch.stage}/${scratch.key}`,
      bytes: await directoryBytes(scratch.dir),
    });
    if (!options.dryRun) await Deno.remove(scratch.dir, { recursive: true });
  }
  if (!options.dryRun) await store.cleanLeftovers();
  return { removed, kept };
}
