/**
 * Content-addressed artifact store.
 *
 * Layout under the store root:
 *
 * ```
 * store.json                       marks the directory as a store (format, creation time)
 * .lock                            the store lock (store_lock.ts)
 * .lock.workers                    held shared by worker processes of the running run
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
 * A directory is a store only when it holds `store.json` ({@link openStore} writes it into a new
 * or empty directory, and into a directory made before markers existed that holds nothing but
 * artifacts). Commands refuse any other directory, so a mistyped `--store` can never make `gc`
 * delete what is not an artifact, and inside a store `gc` removes only folders that are
 * artifacts: a manifest that parses and names the folder's own stage and key.
 *
 * @module
 */

import type { NodeInputs } from "./cache_key.ts";
import { StoreError } from "./errors.ts";
import { pathProblem, type Permits } from "./permits.ts";
import { StateFileError } from "./records.ts";
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

/** What {@link ArtifactStore.read} found. */
export interface ReadResult {
  /** The manifest, or `null`. */
  manifest: Manifest | null;
  /** Why there is none ("not in store", or what is wrong with the one there). */
  reason: string;
  /** True when a manifest is there but is not this artifact's: the artifact is corrupted. */
  corrupt: boolean;
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

/** Name of the file that marks a directory as an artifact store. */
export const STORE_MARKER = "store.json";

/** `store.json`. */
export interface StoreMarker {
  /** Marker format version. */
  format: 1;
  /** What the directory is, for whoever opens the file. */
  kind: "sent artifact store";
  /** ISO time the store was created (or adopted). */
  createdAt: string;
}

/** Entries of a store root that are the store's own, not stage folders. */
const RESERVED = new Set([
  STORE_MARKER,
  ".lock",
  ".lock.break",
  ".lock.workers",
  ".tmp",
  ".scratch",
  ".trash",
]);

/** A cache key: 64 lowercase hex digits. */
const KEY = /^[0-9a-f]{64}$/;

/** Directories and files below a store root that are not artifacts (relative paths). */
export interface StoreScan {
  /** Committed artifacts, sorted by stage then key. */
  artifacts: StoredArtifact[];
  /** Entries that are neither artifacts nor the store's own (`dir/` for directories). */
  strays: string[];
}

/** What a directory is, as far as the store is concerned. */
export type StoreState =
  | { kind: "store" }
  | { kind: "absent" }
  | { kind: "empty" }
  | { kind: "unmarked" }
  | { kind: "file" }
  | { kind: "foreign"; strays: string[] };

/** What a command does with the store: look, add artifacts, or delete them. */
export type StoreUse = "read" | "write" | "collect";

/** Per state and use: open as is, mark as a store first, or refuse with this message. */
type OpenRule = "ok" | "mark" | ((root: string, state: StoreState) => string);

const NOT_A_DIRECTORY: OpenRule = (root) =>
  `--store ${root} is a file; expected a directory (an artifact store, or a new or empty directory for one)`;
const FOREIGN: OpenRule = (root, state) =>
  `--store ${root} is not an artifact store: it has no ${STORE_MARKER} and holds other things (${
    listSome(state.kind === "foreign" ? state.strays : [])
  }); give an existing store, or a new or empty directory for one`;

/** How each command use treats each kind of directory. */
const OPEN_RULES: Readonly<Record<StoreState["kind"], Readonly<Record<StoreUse, OpenRule>>>> = {
  store: { read: "ok", write: "ok", collect: "ok" },
  absent: {
    read: "ok",
    write: "mark",
    collect: (root) => `--store ${root} does not exist; nothing has run with this store`,
  },
  empty: {
    read: "ok",
    write: "mark",
    collect: (root) =>
      `--store ${root} is an empty directory, not an artifact store (no ${STORE_MARKER})`,
  },
  // Made before stores were marked: it holds nothing but artifacts, so it is adopted.
  unmarked: { read: "ok", write: "mark", collect: "mark" },
  file: { read: NOT_A_DIRECTORY, write: NOT_A_DIRECTORY, collect: NOT_A_DIRECTORY },
  foreign: { read: FOREIGN, write: FOREIGN, collect: FOREIGN },
};

/**
 * Open the store at a directory for one use, marking it as a store where the use allows.
 *
 * @param root Absolute store directory.
 * @param use `read` (status, dry runs), `write` (runs) or `collect` (gc).
 * @returns The store.
 * @throws {StoreError} When the directory cannot serve as a store for that use.
 */
export async function openStore(
  root: string,
  use: StoreUse,
  permits?: Permits,
): Promise<ArtifactStore> {
  const store = new ArtifactStore(root);
  // Checked at the real path: a symlink inside the project must not lead writes out of it.
  const outside = permits ? await pathProblem(store.root, "write", permits) : null;
  if (outside !== null) {
    throw new StoreError(
      store.root,
      `--store ${store.root} ${outside.phrase}; choose a store inside them`,
    );
  }
  try {
    const state = await inspectStore(store.root);
    const rule = OPEN_RULES[state.kind][use];
    if (typeof rule === "function") throw new StoreError(store.root, rule(store.root, state));
    if (rule === "mark") await markStore(store.root);
    if (use !== "read" && state.kind !== "absent") await probeWrite(store.root);
  } catch (error) {
    if (!isUnwritable(error)) throw error;
    throw new StoreError(
      store.root,
      `--store ${store.root} is not writable: ${
        (error as Error).message
      }; expected a directory this user may write`,
    );
  }
  return store;
}

/** Open (creating) the lock file for writing: the first write a run or gc makes. */
async function probeWrite(root: string): Promise<void> {
  const file = await Deno.open(`${root}/.lock`, { write: true, create: true });
  file.close();
}

/** The OS refused a write: permissions, or a read-only file system. */
function isUnwritable(error: unknown): boolean {
  return error instanceof Deno.errors.PermissionDenied ||
    (error as { code?: string })?.code === "EROFS";
}

/**
 * Say what a directory is: a marked store, absent, empty, a store made before markers (only
 * artifacts in it), a file, or something else.
 *
 * @param root Directory.
 * @returns Its state; `foreign` lists what disqualifies it.
 */
export async function inspectStore(root: string): Promise<StoreState> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { kind: "absent" };
    throw error;
  }
  if (!info.isDirectory) return { kind: "file" };
  const names: string[] = [];
  for await (const entry of Deno.readDir(root)) names.push(entry.name);
  if (names.includes(STORE_MARKER)) {
    await readMarker(`${root}/${STORE_MARKER}`);
    return { kind: "store" };
  }
  if (names.length === 0) return { kind: "empty" };
  const { artifacts, strays } = await new ArtifactStore(root).scan();
  if (strays.length > 0) {
    // Name what is in the way by its top-level entry: `runs/`, not `runs/2025….json`.
    const tops = strays.map((path) => path.includes("/") ? `${path.split("/")[0]}/` : path);
    return { kind: "foreign", strays: [...new Set(tops)] };
  }
  return artifacts.length > 0 ? { kind: "unmarked" } : { kind: "empty" };
}

/** Read and check `store.json`; a damaged one is a {@link StateFileError}. */
async function readMarker(path: string): Promise<StoreMarker> {
  let problem: string;
  try {
    const marker = JSON.parse(await Deno.readTextFile(path));
    if (marker?.format === 1) return marker as StoreMarker;
    problem = `format is ${JSON.stringify(marker?.format)}; expected 1`;
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    problem = `not JSON: ${error.message}`;
  }
  throw new StateFileError(
    path,
    `${path} is not a valid store marker (${problem}); delete it and run again: a directory ` +
      "that holds nothing but artifacts is adopted as a store again",
  );
}

/** Write `store.json` atomically (through `.tmp/`, which the store cleans). */
async function markStore(root: string): Promise<void> {
  const marker: StoreMarker = {
    format: 1,
    kind: "sent artifact store",
    createdAt: new Date().toISOString(),
  };
  await Deno.mkdir(`${root}/.tmp`, { recursive: true });
  const temp = `${root}/.tmp/${STORE_MARKER}.${Deno.pid}`;
  await Deno.writeTextFile(temp, JSON.stringify(marker, null, 2) + "\n");
  await Deno.rename(temp, `${root}/${STORE_MARKER}`);
}

/**
 * What is wrong with a parsed manifest read from `<stage>/<key[0:2]>/<key>/`, if anything.
 *
 * @param value Parsed `manifest.json`.
 * @param stage Stage folder it was read from.
 * @param key Key folder it was read from.
 * @returns A problem, or `null` when it is the manifest of that artifact.
 */
export function manifestProblem(value: unknown, stage: string, key: string): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "is not a JSON object";
  }
  const manifest = value as Partial<Manifest>;
  if (manifest.format !== 1) return `has format ${JSON.stringify(manifest.format)}; expected 1`;
  if (manifest.stage !== stage || manifest.key !== key) {
    return `names ${manifest.stage}/${manifest.key}, not the folder's ${stage}/${key}`;
  }
  for (const field of ["params", "inputs", "metrics", "files"] as const) {
    if (!isObject(manifest[field])) return `has ${field} ${JSON.stringify(manifest[field])}`;
  }
  if (typeof manifest.node !== "string") return "has no node id";
  for (const [file, entry] of Object.entries(manifest.files as Record<string, unknown>)) {
    const { sha256, bytes } = (isObject(entry) ? entry : {}) as Partial<FileEntry>;
    if (typeof sha256 !== "string" || !KEY.test(sha256) || !Number.isSafeInteger(bytes)) {
      return `lists ${file} as ${JSON.stringify(entry)}; expected { sha256, bytes }`;
    }
  }
  return null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

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
   * @returns The manifest; or `null` with the reason: `corrupt` when something is there but is
   *   not this artifact's manifest (unreadable, not JSON, or malformed), a plain miss otherwise.
   */
  async read(stage: string, key: string): Promise<ReadResult> {
    const path = `${this.artifactDir(stage, key)}/${MANIFEST}`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { manifest: null, reason: "not in store", corrupt: false };
      }
      const reason = `unreadable manifest ${path}: ${(error as Error).message}`;
      return { manifest: null, reason, corrupt: true };
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      const reason = `corrupt manifest ${path}: ${(error as Error).message}`;
      return { manifest: null, reason, corrupt: true };
    }
    const problem = manifestProblem(parsed, stage, key);
    if (problem !== null) {
      return { manifest: null, reason: `manifest ${path} ${problem}`, corrupt: true };
    }
    return { manifest: parsed as Manifest, reason: "", corrupt: false };
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
    return (await this.scan()).artifacts;
  }

  /**
   * Walk the store: artifacts are `<stage>/<key[0:2]>/<key>/` folders whose manifest parses and
   * names that stage and key; everything else outside the store's own entries is a stray.
   * @returns Artifacts and strays.
   */
  async scan(): Promise<StoreScan> {
    const artifacts: StoredArtifact[] = [];
    const strays: string[] = [];
    for (const top of await readEntries(this.root)) {
      if (RESERVED.has(top.name)) continue;
      if (!top.isDirectory) {
        strays.push(top.name);
        continue;
      }
      const stage = top.name;
      for (const prefix of await readEntries(`${this.root}/${stage}`)) {
        if (!prefix.isDirectory || !/^[0-9a-f]{2}$/.test(prefix.name)) {
          strays.push(`${stage}/${prefix.name}${prefix.isDirectory ? "/" : ""}`);
          continue;
        }
        for (const entry of await readEntries(`${this.root}/${stage}/${prefix.name}`)) {
          const rel = `${stage}/${prefix.name}/${entry.name}`;
          const key = entry.name;
          const isArtifact = entry.isDirectory && KEY.test(key) && key.startsWith(prefix.name) &&
            (await this.read(stage, key)).manifest !== null;
          if (isArtifact) artifacts.push({ stage, key, dir: `${this.root}/${rel}` });
          else strays.push(`${rel}${entry.isDirectory ? "/" : ""}`);
        }
      }
    }
    artifacts.sort((a, b) => a.stage.localeCompare(b.stage) || a.key.localeCompare(b.key));
    return { artifacts, strays: strays.sort() };
  }

  /**
   * Every scratch directory in the store (`.scratch/<stage>/<key>/` with a well-formed key).
   * @returns Stage and key of each.
   */
  async listScratch(): Promise<{ stage: string; key: string; dir: string }[]> {
    const out = [];
    for (const stage of await readDirNames(`${this.root}/.scratch`)) {
      for (const key of await readDirNames(`${this.root}/.scratch/${stage}`)) {
        if (KEY.test(key)) out.push({ stage, key, dir: `${this.root}/.scratch/${stage}/${key}` });
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

async function readEntries(dir: string): Promise<Deno.DirEntry[]> {
  try {
    const entries: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
    return entries.sort((a, b) => a.name.localeCompare(b.name));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

function listSome(items: readonly string[], limit = 4): string {
  const shown = items.slice(0, limit).join(", ");
  return items.length > limit ? `${shown} and ${items.length - limit} more` : shown;
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
