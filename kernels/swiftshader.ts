/**
 * The Vulkan driver behind the WebGPU execution provider, and SwiftShader as a software fallback.
 *
 * ORT's WebGPU EP (Dawn) needs a Vulkan loader (`libvulkan.so.1`) and at least one Vulkan driver
 * (an ICD). Machines without a GPU, CI among them, have neither. The npm package
 * `@sparticuz/chromium` ships both for linux/x64 inside `bin/swiftshader.tar.br` (a
 * brotli-compressed tar): the loader `libvulkan.so.1`, the software driver `libvk_swiftshader.so`
 * and its manifest `vk_swiftshader_icd.json`. `ensureWebGpuDriver()` extracts them into
 * `.sent/swiftshader/`, rewrites the manifest with the absolute library path, and points this
 * process at them before the first WebGPU session.
 *
 * How that works in-process (verified with onnxruntime-node 1.30 under Deno 2.9):
 * - `VK_ICD_FILENAMES` / `VK_DRIVER_FILES` set with `Deno.env.set` are honoured: the loader reads
 *   them when Dawn creates its Vulkan instance, i.e. at the first WebGPU session, not at process
 *   start. No subprocess is needed.
 * - `LD_LIBRARY_PATH` cannot be set that way (the dynamic linker reads it once at start), so the
 *   bundled loader is preloaded with `Deno.dlopen(path)`; Dawn's later `dlopen("libvulkan.so.1")`
 *   then finds the already-loaded library by its soname. This needs the `ffi` permission, which
 *   onnxruntime-node needs anyway.
 * - ORT creates the WebGPU context once per process, so the driver must be chosen before the
 *   first WebGPU session and cannot be changed afterwards.
 *
 * Choice of driver (`driver` option, else the `SENT_WEBGPU_DRIVER` environment variable, else
 * `"auto"`): `"system"` uses the machine's own loader and drivers; `"swiftshader"` the bundled
 * software driver; `"auto"` uses the system loader when one can be loaded and SwiftShader when
 * not (linux/x64 only).
 *
 * @example
 * ```ts
 * import { ensureWebGpuDriver } from "./swiftshader.ts";
 * const info = ensureWebGpuDriver(); // before the first WebGPU session
 * console.log(info.driver);          // "system" or "swiftshader"
 * ```
 *
 * @module
 */

import { brotliDecompressSync } from "node:zlib";

/** Which Vulkan driver the WebGPU EP uses. */
export type WebGpuDriver = "auto" | "system" | "swiftshader";

/** Options of `ensureWebGpuDriver`. */
export interface WebGpuDriverOptions {
  /** Driver choice; default: `SENT_WEBGPU_DRIVER`, else `"auto"`. */
  driver?: WebGpuDriver;
  /** Where SwiftShader is extracted; default `<project>/.sent/swiftshader`. */
  dir?: string;
}

/** What `ensureWebGpuDriver` set up. */
export interface WebGpuDriverInfo {
  /** The driver in effect for this process. */
  readonly driver: "system" | "swiftshader";
  /** The rewritten ICD manifest (SwiftShader only). */
  readonly icdFile?: string;
  /** The preloaded Vulkan loader (SwiftShader only). */
  readonly loader?: string;
}

/** Environment variable that picks the driver when no option is given. */
export const DRIVER_ENV = "SENT_WEBGPU_DRIVER";

const PROJECT_ROOT = new URL("../", import.meta.url);
const DEFAULT_DIR = new URL(".sent/swiftshader/", PROJECT_ROOT).pathname;
const RUNTIME_DIR = new URL(".sent/xdg-runtime/", PROJECT_ROOT).pathname;
const ARCHIVE = "swiftshader.tar.br";
const LOADER = "libvulkan.so.1";
const DRIVER_LIB = "libvk_swiftshader.so";
const ICD_JSON = "vk_swiftshader_icd.json";
const DRIVERS: readonly string[] = ["auto", "system", "swiftshader"];

let active: WebGpuDriverInfo | undefined;
// Kept open for the life of the process: closing would unload the loader under Dawn.
const preloaded: Deno.DynamicLibrary<Record<string, never>>[] = [];

/**
 * Choose and prepare the Vulkan driver for the WebGPU EP; call before the first WebGPU session.
 *
 * Idempotent: the first call decides for the whole process, later calls return that decision
 * (and throw if they ask for a different driver explicitly).
 *
 * @param options Driver choice and extraction directory.
 * @returns The driver in effect.
 */
export function ensureWebGpuDriver(options: WebGpuDriverOptions = {}): WebGpuDriverInfo {
  const requested = requestedDriver(options);
  if (active) {
    if (requested !== "auto" && requested !== active.driver) {
      throw new Error(
        `webgpu driver: ${requested} was requested, but this process already uses ` +
          `${active.driver} (the driver is fixed at the first WebGPU session)`,
      );
    }
    return active;
  }
  const driver = requested === "auto" ? autoDriver() : requested;
  active = driver === "system" ? { driver } : useSwiftShader(options.dir ?? DEFAULT_DIR);
  return active;
}

/** The driver chosen so far in this process, if any. */
export function activeWebGpuDriver(): WebGpuDriverInfo | undefined {
  return active;
}

function requestedDriver(options: WebGpuDriverOptions): WebGpuDriver {
  const fromEnv = Deno.env.get(DRIVER_ENV);
  const value = options.driver ?? (fromEnv || "auto");
  if (!DRIVERS.includes(value)) {
    throw new Error(
      `${DRIVER_ENV}=${value} is not a WebGPU driver; expected one of ${DRIVERS.join(", ")}`,
    );
  }
  return value as WebGpuDriver;
}

function autoDriver(): "system" | "swiftshader" {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return "system";
  try {
    Deno.dlopen(LOADER, {});
    return "system";
  } catch {
    return "swiftshader";
  }
}

function useSwiftShader(dir: string): WebGpuDriverInfo {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") {
    throw new Error(
      `webgpu driver swiftshader: @sparticuz/chromium ships it for linux/x86_64 only, ` +
        `this is ${Deno.build.os}/${Deno.build.arch}`,
    );
  }
  const { icdFile, loader } = extractSwiftShader(dir);
  Deno.env.set("VK_ICD_FILENAMES", icdFile);
  Deno.env.set("VK_DRIVER_FILES", icdFile);
  if (!Deno.env.get("XDG_RUNTIME_DIR")) {
    Deno.mkdirSync(RUNTIME_DIR, { recursive: true, mode: 0o700 });
    Deno.env.set("XDG_RUNTIME_DIR", RUNTIME_DIR);
  }
  preloaded.push(Deno.dlopen(loader, {}));
  return { driver: "swiftshader", icdFile, loader };
}

/**
 * Extract SwiftShader's Vulkan loader, driver and manifest from `@sparticuz/chromium` into `dir`
 * (skipped when already there), with the manifest's `library_path` made absolute.
 *
 * @param dir Target directory (created if missing).
 * @returns Paths of the manifest and of the loader.
 */
export function extractSwiftShader(dir: string): { icdFile: string; loader: string } {
  const abs = dir.endsWith("/") ? dir : `${dir}/`;
  const icdFile = `${abs}${ICD_JSON}`;
  const loader = `${abs}${LOADER}`;
  if (isExtracted(abs, icdFile)) return { icdFile, loader };
  const archivePath = findArchive();
  const files = readTar(brotliDecompressSync(Deno.readFileSync(archivePath)));
  Deno.mkdirSync(abs, { recursive: true });
  for (const name of [LOADER, DRIVER_LIB]) {
    const data = files.get(name);
    if (!data) {
      throw new Error(`${archivePath}: has no ${name} (found ${[...files.keys()].join(", ")})`);
    }
    writeAtomic(`${abs}${name}`, data);
  }
  const manifest = JSON.parse(new TextDecoder().decode(files.get(ICD_JSON)));
  manifest.ICD.library_path = `${abs}${DRIVER_LIB}`;
  // The manifest goes last: its presence says the libraries are complete.
  writeAtomic(icdFile, new TextEncoder().encode(JSON.stringify(manifest)));
  return { icdFile, loader };
}

function isExtracted(abs: string, icdFile: string): boolean {
  try {
    const manifest = JSON.parse(Deno.readTextFileSync(icdFile));
    return manifest?.ICD?.library_path === `${abs}${DRIVER_LIB}` &&
      Deno.statSync(`${abs}${LOADER}`).isFile;
  } catch {
    return false;
  }
}

function writeAtomic(path: string, data: Uint8Array): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  Deno.writeFileSync(tmp, data);
  Deno.renameSync(tmp, path);
}

function findArchive(): string {
  const candidates: string[] = [];
  try {
    candidates.push(
      new URL(`../bin/${ARCHIVE}`, import.meta.resolve("@sparticuz/chromium")).pathname,
    );
  } catch {
    // Not resolvable from here: fall through to the node_modules path.
  }
  candidates.push(
    new URL(`node_modules/@sparticuz/chromium/bin/${ARCHIVE}`, PROJECT_ROOT).pathname,
  );
  for (const path of candidates) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(
    `webgpu driver swiftshader: ${ARCHIVE} not found (looked at ${candidates.join(", ")}); ` +
      `run \`deno install\` so that npm:@sparticuz/chromium is in node_modules`,
  );
}

/**
 * Regular files of a ustar archive by name. Only what this archive needs: 512-byte headers,
 * octal sizes, the optional name prefix; other entry types are skipped.
 */
function readTar(buf: Uint8Array): Map<string, Uint8Array> {
  const text = (from: number, len: number) =>
    new TextDecoder().decode(buf.subarray(from, from + len)).replace(/\0[\s\S]*$/, "");
  const files = new Map<string, Uint8Array>();
  let off = 0;
  while (off + 512 <= buf.length) {
    const name = text(off, 100);
    if (!name) break; // two zero blocks end the archive
    const size = parseInt(text(off + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(buf[off + 156]);
    const prefix = text(off + 345, 155);
    const path = prefix ? `${prefix}/${name}` : name;
    if (type === "0" || type === "\0") {
      files.set(path.replace(/^\.\//, ""), buf.subarray(off + 512, off + 512 + size));
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
