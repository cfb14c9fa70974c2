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
