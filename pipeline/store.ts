/**
 * Content-addressed artifact store.
 *
 * Layout under the store root:
 *
 * ```
 * <stage>/<key[0:2]>/<key>/        one committed artifact: the stage's files + manifest.json
 * .tmp/<stage>-<key[0:12]>-<pid>-<n>/   artifacts being written (renamed into place when done)
 * .scratch/<stage>/<key>/          per-key scratch (checkpoints), kept until the artifact commits
 * .trash/                          corrupted or replaced artifacts on their way out
 * ```
 *
 * An artifact appears only by `rename` of a finished temp directory, so a killed run never
 * leaves a half-written artifact: at worst an orphan in `.tmp/`, removed by the next run that
 * takes the store lock.
 *
 * @module
 */

import type { NodeInputs } from "./cache_key.ts";
import { sha256File } from "./hash.ts";
import type { Params } from "./stage.ts";

/** Digest and size of one artifact file. */
export interface FileEntry {
  /** Hex sha256. */
  sha256: string;
  /** Size in bytes. */
  bytes: number;
}

/** `manifest.json` of an artifact. */
export interface Manifest {
  /** Manifest format version. */
  format: 1;
  /** Stage name. */
  stage: string;
  /** Node id. */
  node: string;
  /** Fan-out parameters. */
  params: Params;
  /** Cache key (directory name). */
  key: string;
  /** What the key was computed from. */
  inputs: NodeInputs;
  /** Artifact-relative path → digest, for every file except manifest.json. */
  files: Record<string, FileEntry>;
  /** Final summary metrics written by the stage. */
  metrics: Record<string, unknown>;
  /** When the stage ran and for how long. */
  timings: { startedAt: string; finishedAt: string; seconds: number };
  /** Versions of the tools that produced it. */
  versions: Record<string, string>;
  /** Id of the run that produced it. */
  run: string;
}

/** Fields of a manifest the caller supplies when committing (the store adds `files`). */
export type ManifestDraft = Omit<Manifest, "format" | "files">;

/** Result of re-hashing an artifact. */
export interface VerifyResult {
  /** True when every file matches its manifest entry and nothing is extra or missing. */
  ok: boolean;
  /** One line per problem, naming the file. */
  problems: string[];
}

/** One committed artifact found by {@link ArtifactStore.list}. */
export interface StoredArtifact {
  /** Stage name. */
  stage: string;
  /** Cache key. */
  key: string;
  /** Absolute directory. */
  dir: string;
}

const MANIFEST = "manifest.json";

/** The artifact store rooted at one directory. */
export class ArtifactStore {
  /** Absolute store root. */
  readonly root: string;
  #tempCounter = 0;

  /**
   * @param root Store directory (created on first write).
   */
  constructor(root: string) {
    this.root = root.replace(/\/$/, "");
  }

  /**
   * Directory of an artifact (whether or not it exists).
   * @param stage Stage name.
   * @param key Cache key.
   * @returns Absolute path.
   */
  artifactDir(stage: string, key: string): string {
    return `${this.root}/${stage}/${key.slice(0, 2)}/${key}`;
  }

  /**
   * Scratch directory of a key, created if needed; survives failed and killed attempts.
   * @param stage Stage name.
   * @param key Cache key.
   * @returns Absolute path.
   */
  async scratchDir(stage: string, key: string): Promise<string> {
    const dir = `${this.root}/.scratch/${stage}/${key}`;
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Remove a key's scratch directory (after its artifact committed).
   * @param stage Stage name.
   * @param key Cache key.
   */
  async removeScratch(stage: string, key: string): Promise<void> {
    await removeIfExists(`${this.root}/.scratch/${stage}/${key}`);
  }

  /**
   * Read a committed artifact's manifest.
   * @param stage Stage name.
   * @param key Cache key.
   * @returns The manifest; `null` with a reason when absent or unreadable (a logged miss).
   */
  async read(stage: string, key: string): Promise<{ manifest: Manifest | null; reason: string }> {
    const path = `${this.artifactDir(stage, key)}/${MANIFEST}`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { manifest: null, reason: "not in store" };
      return { manifest: null, reason: `unreadable manifest ${path}: ${(error as Error).message}` };
    }
    try {
      const manifest = JSON.parse(text) as Manifest;
      if (manifest.key !== key || manifest.stage !== stage) {
        return {
          manifest: null,
          reason: `manifest ${path} names ${manifest.stage}/${manifest.key}`,
        };
      }
      return { manifest, reason: "" };
    } catch (error) {
      return { manifest: null, reason: `corrupt manifest ${path}: ${(error as Error).message}` };
    }
  }

  /**
   * Create an empty temp directory for a new artifact.
   * @param stage Stage name.
   * @param key Cache key.
   * @returns Absolute path.
   */
  async createTemp(stage: string, key: string): Promise<string> {
    const dir = `${this.root}/.tmp/${stage}-${key.slice(0, 12)}-${Deno.pid}-${this.#tempCounter++}`;
    await removeIfExists(dir);
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Hash a finished temp directory, write its manifest and rename it into place.
   *
   * @param tempDir Directory from {@link ArtifactStore.createTemp}.
   * @param draft Manifest fields (everything but `files`).
   * @param options `replace: true` moves an existing artifact with the same key aside first
   *   (`stage --force`, or a corrupted one found by `--verify`).
   * @returns The committed manifest (the existing one if another process committed first).
   */
  async commit(
    tempDir: string,
    draft: ManifestDraft,
    options: { replace?: boolean } = {},
  ): Promise<Manifest> {
    const files: Record<string, FileEntry> = {};
    for (const rel of await listFiles(tempDir)) {
      if (rel === MANIFEST) {
        throw new Error(`stage ${draft.stage} wrote ${MANIFEST} itself; that name is reserved`);
      }
      files[rel] = await sha256File(`${tempDir}/${rel}`);
    }
    const manifest: Manifest = { format: 1, ...draft, files };
    await Deno.writeTextFile(`${tempDir}/${MANIFEST}`, JSON.stringify(manifest, null, 2) + "\n");
    const target = this.artifactDir(draft.stage, draft.key);
    await Deno.mkdir(target.replace(/\/[^/]+$/, ""), { recursive: true });
    if (options.replace) await this.discard(draft.stage, draft.key);
    try {
      await Deno.rename(tempDir, target);
      return manifest;
    } catch (error) {
      // Someone committed the same key first (same inputs ⇒ same artifact): keep theirs.
      const existing = await this.read(draft.stage, draft.key);
      await removeIfExists(tempDir);
      if (existing.manifest) return existing.manifest;
      throw new Error(`could not move ${tempDir} to ${target}: ${(error as Error).message}`);
    }
  }

  /**
   * Re-hash an artifact's files against its manifest.
   * @param stage Stage name.
   * @param key Cache key.
   * @returns Whether it is intact, and what is wrong otherwise.
   */
  async verify(stage: string, key: string): Promise<VerifyResult> {
    const { manifest, reason } = await this.read(stage, key);
    if (!manifest) return { ok: false, problems: [reason] };
    const dir = this.artifactDir(stage, key);
    const problems: string[] = [];
    const present = new Set(await listFiles(dir));
    for (const [rel, expected] of Object.entries(manifest.files)) {
      if (!present.has(rel)) {
        problems.push(`${rel}: missing`);
        continue;
      }
      const actual = await sha256File(`${dir}/${rel}`);
      if (actual.sha256 !== expected.sha256 || actual.bytes !== expected.bytes) {
        problems.push(
          `${rel}: sha256 ${actual.sha256.slice(0, 12)}… (${actual.bytes} bytes), manifest says ${
            expected.sha256.slice(0, 12)
          }… (${expected.bytes} bytes)`,
        );
      }
    }
    for (const rel of present) {
      if (rel !== MANIFEST && !Object.hasOwn(manifest.files, rel)) {
        problems.push(`${rel}: not listed in the manifest`);
      }
    }
    return { ok: problems.length === 0, problems };
  }

  /**
   * Move an artifact out of the store and delete it.
   * @param stage Stage name.
   * @param key Cache key.
   */
  async discard(stage: string, key: string): Promise<void> {
    const dir = this.artifactDir(stage, key);
    const trash = `${this.root}/.trash/${stage}-${key}-${Deno.pid}-${this.#tempCounter++}`;
    await Deno.mkdir(`${this.root}/.trash`, { recursive: true });
    try {
      await Deno.rename(dir, trash);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    await removeIfExists(trash);
  }

  /**
   * Remove leftovers of killed runs (`.tmp/`, `.trash/`). Call only while holding the store lock.
   * @returns Number of entries removed.
   */
  async cleanLeftovers(): Promise<number> {
    let removed = 0;
    for (const sub of [".tmp", ".trash"]) {
      for (const entry of await readDirNames(`${this.root}/${sub}`)) {
        await removeIfExists(`${this.root}/${sub}/${entry}`);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Every committed artifact in the store.
   * @returns Artifacts, sorted by stage then key.
   */
  async list(): Promise<StoredArtifact[]> {
    const out: StoredArtifact[] = [];
    for (const stage of (await readDirNames(this.root)).filter((name) => !name.startsWith("."))) {
      for (const prefix of await readDirNames(`${this.root}/${stage}`)) {
        for (const key of await readDirNames(`${this.root}/${stage}/${prefix}`)) {
          out.push({ stage, key, dir: `${this.root}/${stage}/${prefix}/${key}` });
        }
      }
    }
    return out.sort((a, b) => a.stage.localeCompare(b.stage) || a.key.localeCompare(b.key));
  }

  /**
   * Every scratch directory in the store.
   * @returns Stage and key of each.
   */
  async listScratch(): Promise<{ stage: string; key: string; dir: string }[]> {
    const out = [];
    for (const stage of await readDirNames(`${this.root}/.scratch`)) {
      for (const key of await readDirNames(`${this.root}/.scratch/${stage}`)) {
        out.push({ stage, key, dir: `${this.root}/.scratch/${stage}/${key}` });
      }
    }
    return out;
  }
}

/**
 * Files under a directory, as sorted relative paths with `/` separators.
 * @param dir Directory.
 * @returns Relative paths of regular files.
 */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for await (const entry of Deno.readDir(sub === "" ? dir : `${dir}/${sub}`)) {
      const rel = sub === "" ? entry.name : `${sub}/${entry.name}`;
      if (entry.isDirectory) await walk(rel);
      else out.push(rel);
    }
  };
  await walk("");
  return out.sort();
}

/**
 * Total size of the files under a directory.
 * @param dir Directory.
 * @returns Bytes.
 */
export async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const rel of await listFiles(dir)) total += (await Deno.stat(`${dir}/${rel}`)).size;
  return total;
}

async function readDirNames(dir: string): Promise<string[]> {
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(dir)) if (entry.isDirectory) names.push(entry.name);
    return names.sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
