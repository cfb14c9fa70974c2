/**
 * What the project's tasks may touch, read from the permission sets in `deno.json`, and the words
 * for a refusal.
 *
 * Deno's own message for a denied operation ("Requires read access to "/x", run again with the
 * --allow-read flag") gives advice a user cannot follow: tasks run with fixed permission sets
 * (`-P=pipeline`, `-P=fetch`), and no flag added to `deno task` reaches them. {@link explainDenied}
 * says instead what the set allows, so the user can move the file, not widen the sandbox.
 *
 * @module
 */

/** The permission sets of `deno.json` that entry points run under. */
export type PermissionSet = "pipeline" | "fetch" | "test";

/** What one permission set allows, with paths absolute. */
export interface Permits {
  /** Set name. */
  set: PermissionSet;
  /** Project root (the folder of deno.json). */
  root: string;
  /** Folders (or files) that may be read. */
  read: string[];
  /** Folders (or files) that may be written. */
  write: string[];
  /** Environment variable names and `PREFIX_*` patterns that may be read. */
  env: string[];
  /** Whether the network may be used at all. */
  net: boolean;
}

/** The project root: the folder above `pipeline/`. */
export const PROJECT_ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

const cache = new Map<string, Permits>();

/**
 * The permits of a permission set.
 *
 * @param set Permission set name in deno.json.
 * @param root Project root holding deno.json (default: this project's).
 * @returns Absolute read and write roots, env names, network use. A missing or unreadable
 *   deno.json gives the project root alone.
 */
export function permitsOf(set: PermissionSet, root: string = PROJECT_ROOT): Permits {
  const id = `${root}\0${set}`;
  const known = cache.get(id);
  if (known) return known;
  let spec: Record<string, unknown> = {};
  try {
    const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
    spec = config?.permissions?.[set] ?? {};
  } catch {
    spec = { read: ["."], write: ["."] };
  }
  const paths = (value: unknown): string[] =>
    value === true ? ["/"] : Array.isArray(value) ? value.map((p) => resolve(root, String(p))) : [];
  const permits: Permits = {
    set,
    root,
    read: paths(spec.read),
    write: paths(spec.write),
    env: Array.isArray(spec.env) ? spec.env.map(String) : spec.env === true ? ["*"] : [],
    net: spec.net === true || Array.isArray(spec.net),
  };
  cache.set(id, permits);
  return permits;
}

/**
 * Whether a path lies inside one of some roots (lexically: symlinks are not followed here).
 *
 * @param path Absolute path.
 * @param roots Absolute roots.
 * @returns True when `path` is a root or below one.
 */
export function isInside(path: string, roots: readonly string[]): boolean {
  const normal = normalise(path);
  return roots.some((root) => {
    const base = normalise(root);
    return base === "/" || normal === base || normal.startsWith(`${base}/`);
  });
}

/**
 * The real path of a path: every symlink on it followed (dangling ones too), and a tail that
 * does not exist yet kept as written.
 *
 * Deno checks a permission against the path as written, and the OS then follows symlinks, so a
 * symlink inside the project can lead a read or write anywhere. Checking the real path against
 * the permitted folders closes that.
 *
 * @param path Absolute path.
 * @returns Absolute real path.
 */
export function realPathOf(path: string): Promise<string> {
  return resolveReal(path, 0);
}

async function resolveReal(path: string, depth: number): Promise<string> {
  if (depth > 40) throw new Error(`${path}: too many levels of symbolic links`);
  const normal = normalise(path);
  try {
    return await Deno.realPath(normal);
  } catch (error) {
    // Outside what may be read: it cannot be followed further, and it is outside anyway.
    if (error instanceof Deno.errors.NotCapable) return normal;
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Not there (or a dangling symlink): resolve the parent, then this entry.
  const parent = normal.replace(/\/[^/]+$/, "") || "/";
  const name = normal.slice(parent === "/" ? 1 : parent.length + 1);
  if (normal === "/") return "/";
  const realParent = await resolveReal(parent, depth + 1);
  const here = `${realParent === "/" ? "" : realParent}/${name}`;
  let target: string;
  try {
    target = await Deno.readLink(here);
  } catch {
    return here; // does not exist: kept as written
  }
  return await resolveReal(target.startsWith("/") ? target : `${realParent}/${target}`, depth + 1);
}

/**
 * Whether the real path of a path lies inside one of some roots, themselves taken at their real
 * paths.
 *
 * @param path Absolute path.
 * @param roots Absolute roots.
 * @returns True when the resolved path is inside.
 */
export async function isInsideReal(path: string, roots: readonly string[]): Promise<boolean> {
  const real = await realPathOf(path);
  const realRoots = await Promise.all(roots.map((root) => realPathOf(root).catch(() => root)));
  return isInside(real, realRoots);
}

/** A path that leads out of the permitted folders: itself, or a symlink below it. */
export interface PathProblem {
  /** `self`: the path itself; `below`: an entry inside the folder it names. */
  where: "self" | "below";
  /** E.g. `resolves to /etc, outside the folders …` or `a.jsonl is a symlink to /etc/x, outside …`. */
  phrase: string;
}

/**
 * What is wrong with a path a run reads or writes, if anything: it resolves outside the folders
 * the permits allow, or (with `below`) a symlink inside the folder it names does.
 *
 * @param path Absolute path.
 * @param access `read` or `write`.
 * @param permits The permits of the running entry point.
 * @param options `below: true` also follows the symlinks inside the folder (a few levels deep).
 * @returns The problem, or `null` when the path is fine.
 */
export async function pathProblem(
  path: string,
  access: "read" | "write",
  permits: Permits,
  options: { below?: boolean } = {},
): Promise<PathProblem | null> {
  const roots = access === "read" ? permits.read : permits.write;
  const outside = `outside the folders ${whoRuns(permits)} may ${access} (${
    describeRoots(roots, permits.root)
  })`;
  const real = await realPathOf(path);
  if (!(await isInsideReal(path, roots))) {
    const how = real === normalise(path) ? "is" : `resolves to ${real},`;
    return { where: "self", phrase: `${how} ${outside}` };
  }
  if (!options.below) return null;
  // Symlinks below a folder lead elsewhere too: follow each (a few levels, a bounded count).
  let seen = 0;
  const walk = async (dir: string, rel: string, level: number): Promise<PathProblem | null> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      return null; // not a folder, or not there: nothing below it
    }
    for (const entry of entries) {
      if (++seen > 10_000) return null;
      const child = `${dir}/${entry.name}`;
      const name = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isSymlink && !(await isInsideReal(child, roots))) {
        return {
          where: "below",
          phrase: `${name} is a symlink to ${await realPathOf(child)}, ${outside}`,
        };
      }
      if (entry.isDirectory && level < 4) {
        const below = await walk(child, name, level + 1);
        if (below !== null) return below;
      }
    }
    return null;
  };
  return await walk(real, "", 0);
}

/**
 * Make a path absolute against the project root and normalise `.` and `..`.
 *
 * @param root Project root.
 * @param path Absolute or root-relative path.
 * @returns Absolute path without a trailing slash.
 */
export function resolve(root: string, path: string): string {
  return normalise(path.startsWith("/") ? path : `${root}/${path}`);
}

/**
 * Describe the folders of a list for messages: the project root by name, others as paths.
 *
 * @param roots Absolute roots.
 * @param root Project root.
 * @returns E.g. `the project folder /p and /p/../shared/datasets`.
 */
export function describeRoots(roots: readonly string[], root: string): string {
  if (roots.length === 0) return "no folder";
  const words = roots.map((r) => (r === normalise(root) ? `the project folder ${r}` : r));
  return words.length === 1 ? words[0] : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
}

/** Who runs under a permission set, for messages: "the pipeline", "fetch-data", "the tests". */
export function whoRuns(permits: Permits): string {
  return { pipeline: "the pipeline", fetch: "fetch-data", test: "the tests" }[permits.set];
}

/** Deno's wording of a denied operation (Deno 2): `Requires <kind> access to "<what>", run again with the --allow-<kind> flag`. */
const DENIED =
  /Requires (\w+) access to (?:"([^"]*)"|([^,]+))?,? run again with the --allow-[\w-]+ flags?/;

/** Per kind of access: what the set allows, in words. */
const DENIED_WORDS: Readonly<Record<string, (what: string, permits: Permits) => string>> = {
  read: (what, p) =>
    `reading ${what} is not permitted: ${whoRuns(p)} may read only inside ${
      describeRoots(p.read, p.root)
    } (deno.json permission set "${p.set}"); move or copy the file there`,
  write: (what, p) =>
    `writing ${what} is not permitted: ${whoRuns(p)} may write only inside ${
      describeRoots(p.write, p.root)
    } (deno.json permission set "${p.set}"); choose a path there`,
  net: (what, p) =>
    `network access to ${what} is not permitted: ${
      p.net
        ? `${whoRuns(p)} may reach only the hosts deno.json lists`
        : "only fetch-data uses the network"
    }`,
  env: (what, p) =>
    `reading the environment variable ${what} is not permitted: ${whoRuns(p)} may read only ${
      p.env.join(", ") || "none"
    }`,
};

/**
 * Replace Deno's "run again with --allow-…" advice in a message with what the project permits.
 *
 * @param message Any error message (text without Deno's wording is returned unchanged).
 * @param permits The permits of the running entry point.
 * @returns The message in the project's words.
 * @example
 * ```ts
 * import { explainDenied, permitsOf } from "./permits.ts";
 * explainDenied('Requires read access to "/etc/x", run again with the --allow-read flag', permitsOf("pipeline"));
 * // 'reading /etc/x is not permitted: the pipeline may read only inside the project folder …'
 * ```
 */
export function explainDenied(message: string, permits: Permits): string {
  const match = message.match(DENIED);
  if (match === null) return message;
  const [, kind, quoted, bare] = match;
  const what = (quoted ?? bare ?? "").trim() || "this";
  const words = DENIED_WORDS[kind]?.(what, permits) ??
    `${kind} access to ${what} is not permitted by deno.json's permission set "${permits.set}"`;
  return message.replace(DENIED, words);
}

function normalise(path: string): string {
  return new URL(`file://${path}`).pathname.replace(/\/$/, "") || "/";
}
