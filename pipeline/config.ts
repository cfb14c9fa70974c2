/**
 * Resolved config: a YAML preset (optionally `extends:` another), then `--set key=value`
 * overrides and `--device`, then schema defaults for keys the preset leaves out, all checked
 * against the schema (config_schema.ts). Every problem is reported at once, each naming the
 * key path, the bad value, where it came from and what was expected; unknown keys list the
 * valid keys at their level.
 *
 * @example
 * ```ts
 * import { loadConfig, getPath } from "./config.ts";
 * const config = await loadConfig({ preset: "tiny", sets: ["train.lr=0.0003"] });
 * getPath(config.values, "train.lr"); // 0.0003
 * ```
 *
 * @module
 */

import {
  checkValue,
  childNames,
  configSchema,
  describeExpected,
  type FieldSpec,
  isSection,
  parseOverride,
} from "./config_schema.ts";
import { describeRoots, permitsOf } from "./permits.ts";

/** Nested plain object of config values. */
export type ConfigValues = Record<string, unknown>;

/** A validated config and where it came from. */
export interface ResolvedConfig {
  /** Preset name (or path) as given. */
  preset: string;
  /** Absolute path of the preset file. */
  presetPath: string;
  /** `--set` overrides in the order given. */
  overrides: readonly string[];
  /** The values, nested by section. */
  values: ConfigValues;
}

/** Options for {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Preset name in the presets folder, or a path to a YAML file. Default `"tiny"`. */
  preset?: string;
  /** `key=value` overrides, applied in order. */
  sets?: readonly string[];
  /** Shorthand for `--set runtime.device=…`. */
  device?: string;
  /** Folder of named presets. Default: `pipeline/presets/`. */
  presetsDir?: string;
}

/** A config that does not match the schema; `problems` holds one line per problem. */
export class ConfigError extends Error {
  /** One message per problem found. */
  readonly problems: readonly string[];

  /**
   * @param problems Messages, each naming a key path, its value and what was expected.
   */
  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Up to this many missing keys are named one per line; more from a preset without `extends` is one line. */
const MISSING_LISTED = 5;

/** The folder of named presets shipped with the pipeline. */
export const DEFAULT_PRESETS_DIR = new URL("./presets/", import.meta.url).pathname;

/**
 * Load, override, fill defaults and validate a config.
 *
 * @param options Preset, overrides, device.
 * @returns The resolved config.
 * @throws {ConfigError} When the preset is missing or anything fails validation.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<ResolvedConfig> {
  const preset = options.preset ?? "tiny";
  const presetsDir = options.presetsDir ?? DEFAULT_PRESETS_DIR;
  const presetPath = await resolvePresetPath(preset, presetsDir);
  const { values, extended } = await readPreset(presetPath, presetsDir, []);
  const origin = `preset ${preset}`;
  const problems = validateValues(values, origin);
  // Keys below a section that already has a problem are not reported again as missing.
  const reported = problems.map((problem) => problem.match(/"([^"]+)"/)?.[1] ?? "");

  const sets = [...(options.sets ?? [])];
  if (options.device !== undefined) sets.push(`runtime.device=${options.device}`);
  for (const text of sets) {
    const problem = applyOverride(values, text);
    if (problem !== null) problems.push(problem);
  }
  const missing: string[] = [];
  for (const [path, spec] of configSchema()) {
    if (getPath(values, path) !== undefined) continue;
    if (spec.default !== undefined) {
      setPath(values, path, structuredClone(spec.default));
    } else if (!reported.some((bad) => path.startsWith(`${bad}.`))) {
      missing.push(path);
    }
  }
  if (!extended && missing.length > MISSING_LISTED) {
    // A preset written from scratch: one line, and the way to inherit the rest.
    problems.push(
      `preset ${presetPath} leaves out ${missing.length} required keys (${
        missing.slice(0, MISSING_LISTED).join(", ")
      }, … and ${missing.length - MISSING_LISTED} more); a preset that changes a few keys ` +
        `starts with "extends: tiny"`,
    );
  } else {
    for (const path of missing) {
      const expected = describeExpected(configSchema().get(path)!);
      problems.push(`config key "${path}" is missing (${origin}): expected ${expected}`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { preset, presetPath, overrides: options.sets ?? [], values };
}

/**
 * Read a value by dot path.
 *
 * @param values Nested config values.
 * @param path Dot path such as `"train.lr"`.
 * @returns The value, or `undefined` when absent.
 */
export function getPath(values: ConfigValues, path: string): unknown {
  let node: unknown = values;
  for (const part of path.split(".")) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

/**
 * Names of the presets in a folder.
 *
 * @param presetsDir Folder to list.
 * @returns Sorted preset names (file names without `.yaml`).
 */
export async function listPresets(presetsDir: string = DEFAULT_PRESETS_DIR): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(presetsDir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) names.push(entry.name.replace(/\.ya?ml$/, ""));
  }
  return names.sort();
}

async function resolvePresetPath(preset: string, presetsDir: string): Promise<string> {
  const isPath = preset.includes("/") || /\.ya?ml$/.test(preset);
  const path = isPath ? preset : `${presetsDir.replace(/\/$/, "")}/${preset}.yaml`;
  try {
    return await Deno.realPath(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw outsideReadable(preset);
    const known = await listPresets(presetsDir).catch(() => []);
    throw new ConfigError([
      isPath
        ? `preset file "${preset}" does not exist`
        : `unknown preset "${preset}"; available presets: ${
          known.join(", ")
        } (or pass a path to a .yaml file)`,
    ]);
  }
}

/** A preset file outside the folders the pipeline may read (or a symlink to one). */
function outsideReadable(preset: string): ConfigError {
  const permits = permitsOf("pipeline");
  return new ConfigError([
    `preset file "${preset}" is outside the folders the pipeline may read (${
      describeRoots(permits.read, permits.root)
    }); copy it into the project`,
  ]);
}

/** Values of a preset (its `extends` chain merged), and whether it extends another. */
interface ReadPreset {
  values: ConfigValues;
  extended: boolean;
}

async function readPreset(
  path: string,
  presetsDir: string,
  chain: string[],
): Promise<ReadPreset> {
  if (chain.includes(path)) {
    throw new ConfigError([`preset "extends" forms a cycle: ${[...chain, path].join(" → ")}`]);
  }
  const { parse } = await import("yaml");
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw outsideReadable(path);
    throw new ConfigError([`preset ${path} cannot be read: ${(error as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (error) {
    throw new ConfigError([`preset ${path} is not valid YAML: ${(error as Error).message}`]);
  }
  if (parsed === null || parsed === undefined) parsed = {};
  if (!isPlainObject(parsed)) {
    throw new ConfigError([
      `preset ${path} must be a mapping of sections, got ${typeName(parsed)}`,
    ]);
  }
  const { extends: parent, ...own } = parsed;
  if (parent === undefined) return { values: own, extended: false };
  if (typeof parent !== "string") {
    throw new ConfigError([
      `preset ${path}: "extends" = ${JSON.stringify(parent)}; expected a preset name`,
    ]);
  }
  const parentDir = parent.includes("/") ? path.replace(/[^/]*$/, "") : presetsDir;
  const parentPath = await resolvePresetPath(
    parent.includes("/") ? `${parentDir}${parent}` : parent,
    presetsDir,
  );
  const inherited = await readPreset(parentPath, presetsDir, [...chain, path]);
  return { values: deepMerge(inherited.values, own), extended: true };
}

/** Check every key of a nested value tree against the schema. */
function validateValues(values: ConfigValues, origin: string): string[] {
  const problems: string[] = [];
  const walk = (node: ConfigValues, prefix: string) => {
    for (const [name, value] of Object.entries(node)) {
      const path = prefix === "" ? name : `${prefix}.${name}`;
      const spec = configSchema().get(path);
      if (spec !== undefined) {
        const problem = checkValue(value, spec);
        if (problem !== null) problems.push(badValue(path, value, origin, spec, problem));
      } else if (isSection(path)) {
        if (isPlainObject(value)) walk(value, path);
        else {
          problems.push(
            `config key "${path}" = ${show(value)} (${origin}): expected a section with keys ${
              childNames(path).join(", ")
            }`,
          );
        }
      } else {
        problems.push(unknownKey(path, `${show(value)} (${origin})`));
      }
    }
  };
  walk(values, "");
  return problems;
}

/** Apply one `key=value` override in place; returns a problem message or `null`. */
function applyOverride(values: ConfigValues, text: string): string | null {
  const eq = text.indexOf("=");
  if (eq <= 0) return `--set ${text}: expected key=value, e.g. --set train.lr=0.0003`;
  const path = text.slice(0, eq).trim();
  const raw = text.slice(eq + 1);
  const spec: FieldSpec | undefined = configSchema().get(path);
  if (spec === undefined) {
    if (isSection(path)) {
      return `--set ${text}: "${path}" is a section; set one of its keys: ${
        childNames(path).map((name) => `${path}.${name}`).join(", ")
      }`;
    }
    return `--set ${text}: ${unknownKey(path, JSON.stringify(raw))}`;
  }
  const value = parseOverride(raw, spec);
  const problem = checkValue(value, spec);
  if (problem !== null) {
    return `--set ${text}: config key "${path}" got ${show(raw)}; expected ${
      describeExpected(spec)
    }${problem ? `; ${problem}` : ""}`;
  }
  setPath(values, path, value);
  return null;
}

function unknownKey(path: string, valueText: string): string {
  const parts = path.split(".");
  // Deepest existing section on the path: the level whose valid keys we list.
  let level = "";
  for (let i = parts.length - 1; i > 0; i--) {
    const candidate = parts.slice(0, i).join(".");
    if (isSection(candidate)) {
      level = candidate;
      break;
    }
  }
  const valid = childNames(level).join(", ");
  const where = parts.length === 1 ? "" : ` in "${path}"`;
  return level === ""
    ? `unknown config section "${parts[0]}"${where} = ${valueText}; valid sections: ${valid}`
    : `unknown config key "${path}" = ${valueText}; valid keys under "${level}": ${valid}`;
}

function badValue(
  path: string,
  value: unknown,
  origin: string,
  spec: FieldSpec,
  problem: string,
): string {
  return `config key "${path}" = ${show(value)} (${origin}): expected ${describeExpected(spec)}${
    problem ? `; ${problem}` : ""
  }`;
}

function setPath(values: ConfigValues, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = values;
  for (const part of parts.slice(0, -1)) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as ConfigValues;
  }
  node[parts[parts.length - 1]] = value;
}

function deepMerge(base: ConfigValues, over: ConfigValues): ConfigValues {
  const out: ConfigValues = { ...base };
  for (const [key, value] of Object.entries(over)) {
    out[key] = isPlainObject(value) && isPlainObject(out[key])
      ? deepMerge(out[key] as ConfigValues, value)
      : value;
  }
  return out;
}

function isPlainObject(value: unknown): value is ConfigValues {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  return Array.isArray(value) ? "a list" : value === null ? "null" : `a ${typeof value}`;
}

function show(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}
