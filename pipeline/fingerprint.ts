/**
 * Fingerprints that enter cache keys: the code a stage runs and the engine it runs on.
 *
 * Code: the stage's module and its *local import closure* — every file reached through static
 * `import … from "./x.ts"` / `export … from` / `import "./x.ts"` statements with relative
 * paths, recursively. `import type` lines are skipped (types do not change results). Bare and
 * `npm:` specifiers are not followed; they contribute their pinned specifier (bare names are
 * resolved through deno.json's import map), so bumping a dependency's version invalidates
 * exactly the stages that import it. `node:` built-ins are covered by the Deno version in the
 * engine fingerprint. Dynamic `import("./x.ts")` with a literal path is followed too, so a stage
 * can load heavy modules lazily inside `run` (keeping CLI start-up fast) and still have them in
 * its fingerprint.
 *
 * The engine's own files (this `pipeline/` folder) are not followed: a stage that imports
 * `pipeline/stage.ts` or `pipeline/config_schema.ts` would otherwise be invalidated by every
 * edit of the engine, docs included. The engine enters keys instead through
 * {@link ENGINE_VERSION}, bumped by hand when an engine change alters what stages compute.
 *
 * Engine: {@link ENGINE_VERSION} and the Deno version for every stage; for stages that run ONNX
 * Runtime (`engine: true` in `defineStage`) also the ORT version (read from the installed
 * package.json, without loading the native addon), execution provider and dtype. A stage that
 * never runs ORT gets the same key on every device.
 *
 * @module
 */

import { sha256File } from "./hash.ts";

/**
 * Version of the pipeline engine as far as results are concerned. Bump it when a change under
 * `pipeline/` changes what stages compute (for example the RNG in rng.ts, or what `ctx` hands
 * to stages); every cache key changes with it. Changes that do not affect results (docs, CLI,
 * status output) leave it alone, so they do not rerun anything.
 */
export const ENGINE_VERSION = "1";

/** The engine's folder: its files are covered by {@link ENGINE_VERSION}, not by code fingerprints. */
const ENGINE_DIR = new URL("./", import.meta.url).pathname;

/** The code a stage runs. */
export interface CodeFingerprint {
  /** Project-relative path → hex sha256, for the module and its local import closure. */
  files: Record<string, string>;
  /** Pinned external specifiers imported by those files, e.g. `npm:yaml@2.9.1`. */
  packages: string[];
}

/** The engine a stage runs on. */
export interface EngineFingerprint {
  /** {@link ENGINE_VERSION}. */
  pipeline: string;
  /** onnxruntime-node version (stages that run ORT only). */
  ort?: string;
  /** Execution provider, `runtime.device` (stages that run ORT only). */
  device?: string;
  /** Compute dtype, `runtime.dtype` (stages that run ORT only). */
  dtype?: string;
  /** Deno version. */
  deno: string;
}

/** Options for {@link codeFingerprint}. */
export interface CodeFingerprintOptions {
  /** Project root; recorded paths are relative to it. */
  root: string;
  /** Import map (deno.json "imports"), for resolving bare specifiers. */
  importMap: Readonly<Record<string, string>>;
  /** Per-process cache of scanned files, shared across stages. */
  cache?: Map<string, Promise<ScannedFile>>;
}

/** A file's digest and the specifiers it imports. */
export interface ScannedFile {
  /** Hex sha256 of the file. */
  sha256: string;
  /** Specifiers of its imports (static non-type-only, and literal dynamic ones). */
  specifiers: string[];
}

// `import x from "…"`, `import { a } from "…"`, `export * from "…"`, multi-line lists included;
// anchored at line start so examples inside doc comments (" * import …") do not count.
const FROM_IMPORT = /^[ \t]*(import|export)\b([^'";]*?)\bfrom[ \t]*(['"])([^'"\n]+)\3/gm;
// Side-effect import: `import "./register.ts";`
const BARE_IMPORT = /^[ \t]*import[ \t]*(['"])([^'"\n]+)\1/gm;
// Dynamic import with a literal specifier, outside comment lines: `await import("./x.ts")`.
const DYNAMIC_IMPORT = /^(?![ \t]*(?:\*|\/\/|\/\*)).*?\bimport\([ \t]*(['"])([^'"\n]+)\1[ \t]*\)/gm;

/**
 * Fingerprint a stage module and its local import closure.
 *
 * @param moduleUrl `file:` URL of the module.
 * @param options Root, import map, cache.
 * @returns Files with digests and the pinned packages they import.
 * @throws {Error} When a relative import points to a missing file or a bare specifier is not in
 *   the import map.
 */
export async function codeFingerprint(
  moduleUrl: string,
  options: CodeFingerprintOptions,
): Promise<CodeFingerprint> {
  const cache = options.cache ?? new Map();
  const files: Record<string, string> = {};
  const packages = new Set<string>();
  const pending = [new URL(moduleUrl).pathname];
  const seen = new Set(pending);
  while (pending.length > 0) {
    const path = pending.pop()!;
    if (!cache.has(path)) cache.set(path, scanFile(path));
    let scanned: ScannedFile;
    try {
      scanned = await cache.get(path)!;
    } catch (error) {
      throw new Error(`code fingerprint: cannot read ${path}: ${(error as Error).message}`);
    }
    files[relativeTo(options.root, path)] = scanned.sha256;
    for (const specifier of scanned.specifiers) {
      if (specifier.startsWith("./") || specifier.startsWith("../")) {
        const target = new URL(specifier, `file://${path}`).pathname;
        if (target.startsWith(ENGINE_DIR)) continue; // the engine: covered by ENGINE_VERSION
        if (!seen.has(target)) {
          seen.add(target);
          pending.push(target);
        }
      } else if (!specifier.startsWith("node:")) {
        packages.add(resolveExternal(specifier, options.importMap, path));
      }
    }
  }
  const sortedFiles: Record<string, string> = {};
  for (const key of Object.keys(files).sort()) sortedFiles[key] = files[key];
  return { files: sortedFiles, packages: [...packages].sort() };
}

/**
 * Read a file's digest and its import specifiers.
 *
 * @param path Absolute file path.
 * @returns Digest and specifiers.
 */
export async function scanFile(path: string): Promise<ScannedFile> {
  const [text, digest] = await Promise.all([Deno.readTextFile(path), sha256File(path)]);
  return { sha256: digest.sha256, specifiers: importSpecifiers(text) };
}

/**
 * Import specifiers of a module's source: static imports (skipping `import type` /
 * `export type`) and dynamic imports with a literal specifier.
 *
 * @param source Module text.
 * @returns Specifiers in order of appearance (duplicates removed).
 * @example
 * ```ts
 * import { importSpecifiers } from "./fingerprint.ts";
 * importSpecifiers('import { a } from "./a.ts";\nimport type { B } from "./b.ts";');
 * // ["./a.ts"]
 * ```
 */
export function importSpecifiers(source: string): string[] {
  const found = new Set<string>();
  for (const match of source.matchAll(FROM_IMPORT)) {
    if (/^\s*type\b/.test(match[2])) continue;
    found.add(match[4]);
  }
  for (const match of source.matchAll(BARE_IMPORT)) found.add(match[2]);
  for (const match of source.matchAll(DYNAMIC_IMPORT)) found.add(match[2]);
  return [...found];
}

function resolveExternal(
  specifier: string,
  importMap: Readonly<Record<string, string>>,
  importer: string,
): string {
  if (/^(npm|jsr|https?):/.test(specifier)) return specifier;
  if (Object.hasOwn(importMap, specifier)) return importMap[specifier];
  const prefix = Object.keys(importMap)
    .filter((key) => key.endsWith("/") && specifier.startsWith(key))
    .sort((a, b) => b.length - a.length)[0];
  if (prefix !== undefined) return importMap[prefix] + specifier.slice(prefix.length);
  throw new Error(
    `code fingerprint: ${importer} imports "${specifier}", which is not in deno.json "imports" (known: ${
      Object.keys(importMap).join(", ")
    })`,
  );
}

function relativeTo(root: string, path: string): string {
  const base = root.endsWith("/") ? root : `${root}/`;
  return path.startsWith(base) ? path.slice(base.length) : path;
}

/**
 * Read deno.json's import map.
 *
 * @param root Project root holding deno.json.
 * @returns Specifier → target (empty when there is no deno.json).
 */
export async function readImportMap(root: string): Promise<Record<string, string>> {
  try {
    const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
    return config.imports ?? {};
  } catch {
    return {};
  }
}

/** Options for {@link engineFingerprint}. */
export interface EngineFingerprintOptions {
  /** Project root (holds node_modules and deno.json). */
  root: string;
  /** Execution provider. */
  device: string;
  /** Compute dtype. */
  dtype: string;
}

/**
 * Fingerprint the engine: pipeline engine version, ORT version, device, dtype, Deno version.
 *
 * The ORT version comes from `node_modules/onnxruntime-node/package.json` when installed; before
 * the first install it falls back to the version pinned in deno.json (the same string once
 * installed, so keys do not change).
 *
 * @param options Root, device, dtype.
 * @returns The engine fingerprint.
 */
export async function engineFingerprint(
  options: EngineFingerprintOptions,
): Promise<EngineFingerprint> {
  return {
    pipeline: ENGINE_VERSION,
    ort: await ortVersion(options.root),
    device: options.device,
    dtype: options.dtype,
    deno: Deno.version.deno,
  };
}

/**
 * The part of an engine fingerprint that a stage's key holds: all of it for a stage that runs
 * ONNX Runtime, only the pipeline and Deno versions for one that does not.
 *
 * @param full The whole fingerprint ({@link engineFingerprint}).
 * @param usesEngine Whether the stage runs ORT (`Stage.engine`).
 * @returns The fingerprint for that stage's key.
 */
export function engineFingerprintFor(
  full: EngineFingerprint,
  usesEngine: boolean,
): EngineFingerprint {
  return usesEngine ? full : { pipeline: full.pipeline, deno: full.deno };
}

/**
 * Installed (or pinned) onnxruntime-node version, without loading the native addon.
 *
 * @param root Project root.
 * @returns Version such as `"1.30.0"`, or `"not installed"`.
 */
export async function ortVersion(root: string): Promise<string> {
  try {
    const pkg = JSON.parse(
      await Deno.readTextFile(`${root}/node_modules/onnxruntime-node/package.json`),
    );
    if (typeof pkg.version === "string") return pkg.version;
  } catch {
    // Not installed yet: fall back to the pinned version below.
  }
  const pinned = (await readImportMap(root))["onnxruntime-node"];
  const match = pinned?.match(/@(\d[^/]*)$/);
  return match ? match[1] : "not installed";
}
