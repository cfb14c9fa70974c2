/**
 * The config schema: one typed table from key path (`"train.lr"`) to what the key holds.
 *
 * The core sections (data, base, score, curriculum, train, evaluate, report, runtime) come from
 * `config_core.ts`; stages add their own keys with {@link registerConfigSection}. Presets and
 * `--set` overrides are checked against this table by `config.ts`.
 *
 * @example
 * ```ts
 * import { registerConfigSection } from "./config_schema.ts";
 * registerConfigSection("notes", {
 *   "notes.style": {
 *     type: "enum",
 *     values: ["short", "long"],
 *     default: "short",
 *     doc: "How much the run notes say; long adds every node's timings.",
 *   },
 * });
 * ```
 *
 * @module
 */

import { CORE_SCHEMA } from "./config_core.ts";

/** Value types a config key can hold. */
export type FieldType =
  | "int"
  | "number"
  | "string"
  | "boolean"
  | "enum"
  | "int[]"
  | "number[]"
  | "string[]"
  | "enum[]";

/** What one config key holds: its type, bounds, allowed values and meaning. */
export interface FieldSpec {
  /** Value type; `[]` types are lists of that element type. */
  type: FieldType;
  /** One or two sentences: what the key controls, its unit, and why the default is what it is. */
  doc: string;
  /** Inclusive lower bound for numbers (each element for number lists). */
  min?: number;
  /** Inclusive upper bound for numbers (each element for number lists). */
  max?: number;
  /** Allowed values for `enum` and `enum[]`. */
  values?: readonly string[];
  /** Minimum list length for list types. */
  minItems?: number;
  /** List items must be distinct (a repeated eval set or seed is a mistake, not a request). */
  unique?: boolean;
  /**
   * The (string) value names a file or folder that stages read or write, relative to the project
   * root. Before a run, its real path (and that of every symlink inside a folder) must lie in the
   * folders deno.json permits for that access; an empty string means none.
   */
  path?: "read" | "write";
  /** Value used when a preset leaves the key out; keys without a default are required. */
  default?: unknown;
  /**
   * The key says how a run executes (shard counts, cluster job options), never what it computes:
   * it is left out of every stage's config slice, hence of every cache key, so changing it reruns
   * nothing.
   */
  neutral?: boolean;
}

/** Key path → spec. Paths are dot-separated; the first segment is the section. */
export type SchemaTable = Readonly<Record<string, FieldSpec>>;

/** Options for {@link registerConfigSection}. */
export interface RegisterOptions {
  /** Replace keys that are already registered instead of failing. */
  override?: boolean;
}

const registry = new Map<string, FieldSpec>(Object.entries(CORE_SCHEMA));

/**
 * Add keys to the schema (a stage registers the keys of its section when its module loads).
 *
 * @param section Section name; every key must start with `section.`.
 * @param fields Key path → spec.
 * @param options `override: true` replaces existing keys; otherwise a duplicate throws.
 * @example
 * ```ts
 * import { registerConfigSection } from "./config_schema.ts";
 * registerConfigSection("demo", {
 *   "demo.size": { type: "int", min: 1, default: 4, doc: "Items per batch." },
 * });
 * ```
 */
export function registerConfigSection(
  section: string,
  fields: SchemaTable,
  options: RegisterOptions = {},
): void {
  for (const [path, spec] of Object.entries(fields)) {
    if (!path.startsWith(`${section}.`)) {
      throw new Error(
        `registerConfigSection("${section}"): key "${path}" is outside the section; expected "${section}.<name>"`,
      );
    }
    if (registry.has(path) && !options.override) {
      throw new Error(
        `registerConfigSection("${section}"): key "${path}" is already registered; pass { override: true } to replace it`,
      );
    }
    const problem = spec.default === undefined ? null : checkValue(spec.default, spec);
    if (problem !== null) {
      throw new Error(
        `registerConfigSection("${section}"): default of "${path}" is ${
          JSON.stringify(spec.default)
        }; expected ${describeExpected(spec)}`,
      );
    }
    registry.set(path, spec);
  }
}

/**
 * The current schema, core keys and registered ones.
 *
 * @returns Key path → spec.
 */
export function configSchema(): ReadonlyMap<string, FieldSpec> {
  return registry;
}

/**
 * Names directly below a prefix: sections for `""`, keys or sub-sections otherwise.
 *
 * @param prefix `""` or a section path such as `"train"`.
 * @returns Sorted names (without the prefix).
 */
export function childNames(prefix: string): string[] {
  const start = prefix === "" ? "" : `${prefix}.`;
  const names = new Set<string>();
  for (const path of registry.keys()) {
    if (path.startsWith(start)) names.add(path.slice(start.length).split(".")[0]);
  }
  return [...names].sort();
}

/**
 * Whether a path names a section (has keys below it) rather than a key.
 *
 * @param path Dot path.
 * @returns True for sections.
 */
export function isSection(path: string): boolean {
  for (const key of registry.keys()) if (key.startsWith(`${path}.`)) return true;
  return false;
}

/**
 * Describe what a key expects, for error messages.
 *
 * @param spec Field spec.
 * @returns Text such as "an integer ≥ 1" or "one of cpu, webgpu, cuda".
 */
export function describeExpected(spec: FieldSpec): string {
  const element = spec.type.replace("[]", "");
  const describe = DESCRIBE[element];
  if (!spec.type.endsWith("[]")) return describe(spec, false);
  const length = spec.minItems ? ` (at least ${spec.minItems})` : "";
  return `a list${length} of ${spec.unique ? "distinct " : ""}${describe(spec, true)}`;
}

/**
 * The largest integer a config key takes unless its spec says otherwise: 2³¹ − 1. Sizes,
 * counts and seeds all fit, the engine's int32 shapes and ids need it, and a typo such as
 * `1e20` problems is caught when the config loads, not hours into a run.
 */
export const INT_LIMIT = 2 ** 31 - 1;

const range = (spec: FieldSpec): string =>
  spec.min !== undefined && spec.max !== undefined
    ? ` in [${spec.min}, ${spec.max}]`
    : spec.min !== undefined
    ? ` ≥ ${spec.min}`
    : spec.max !== undefined
    ? ` ≤ ${spec.max}`
    : "";

/** Element type → description, singular ("an integer ≥ 1") or plural ("integers ≥ 1"). */
const DESCRIBE: Record<string, (spec: FieldSpec, plural: boolean) => string> = {
  int: (spec, plural) => `${plural ? "integers" : "an integer"}${range(spec)}`,
  number: (spec, plural) => `${plural ? "numbers" : "a number"}${range(spec)}`,
  string: (_spec, plural) => (plural ? "strings" : "a string"),
  boolean: (_spec, plural) => (plural ? "booleans" : "true or false"),
  enum: (spec, plural) => `${plural ? "values from" : "one of"} ${(spec.values ?? []).join(", ")}`,
};

const inRange = (x: number, spec: FieldSpec): boolean =>
  (spec.min === undefined || x >= spec.min) && (spec.max === undefined || x <= spec.max);

/**
 * Per element type: `null` when a value is valid, `""` when it is simply not of the type or
 * range (the expected type says it all), or a phrase saying what is wrong.
 */
const CHECK_ELEMENT: Record<string, (value: unknown, spec: FieldSpec) => string | null> = {
  int: (v, spec) => {
    if (typeof v !== "number" || !Number.isInteger(v) || !inRange(v, spec)) return "";
    if (spec.max === undefined && (v > INT_LIMIT || !Number.isSafeInteger(v))) {
      const shown = Math.abs(v) >= 1e15 ? v.toExponential() : String(v);
      return `${shown} is above ${INT_LIMIT}, the largest integer a config key takes`;
    }
    return null;
  },
  number: (v, spec) => typeof v === "number" && Number.isFinite(v) && inRange(v, spec) ? null : "",
  string: (v) => typeof v === "string" ? null : "",
  boolean: (v) => typeof v === "boolean" ? null : "",
  enum: (v, spec) => typeof v === "string" && (spec.values ?? []).includes(v) ? null : "",
};

/**
 * Check a value against a spec.
 *
 * @param value Candidate value.
 * @param spec Field spec.
 * @returns `null` when valid; otherwise what is wrong in words (such as `item 1 "x" is not one
 *   of them`), or `""` when the value is simply not of the expected type or range.
 */
export function checkValue(value: unknown, spec: FieldSpec): string | null {
  const element = spec.type.replace("[]", "");
  const check = CHECK_ELEMENT[element];
  if (!spec.type.endsWith("[]")) return check(value, spec);
  if (!Array.isArray(value)) return "";
  if (spec.minItems !== undefined && value.length < spec.minItems) return "";
  for (const [i, item] of value.entries()) {
    const problem = check(item, spec);
    if (problem === null) continue;
    const which = `item ${i} ${JSON.stringify(item)}`;
    if (problem !== "") return `${which}: ${problem}`;
    return element === "enum"
      ? `${which} is not one of them`
      : `${which} is not ${DESCRIBE[element](spec, false)}`;
  }
  if (spec.unique) {
    const first = new Map<string, number>();
    for (const [i, item] of value.entries()) {
      const id = JSON.stringify(item);
      if (first.has(id)) return `item ${i} ${id} repeats item ${first.get(id)}`;
      first.set(id, i);
    }
  }
  return null;
}

const PARSE_ELEMENT: Record<string, (raw: string) => unknown> = {
  int: (raw) => (/^[+-]?\d+$/.test(raw) ? Number(raw) : raw),
  number: (raw) => (raw.trim() !== "" && Number.isFinite(Number(raw)) ? Number(raw) : raw),
  string: (raw) => raw,
  boolean: (raw) => (raw === "true" ? true : raw === "false" ? false : raw),
  enum: (raw) => raw,
};

/**
 * Parse the text of a `--set key=value` override into the key's type. Lists are written
 * `1,2,3` or `[1, 2, 3]`. The result is checked by the caller with {@link checkValue}; text that
 * does not parse is returned unchanged so the check reports it.
 *
 * @param raw Text after `=`.
 * @param spec Spec of the key being set.
 * @returns The parsed value.
 */
export function parseOverride(raw: string, spec: FieldSpec): unknown {
  const element = spec.type.replace("[]", "");
  const parse = PARSE_ELEMENT[element];
  if (!spec.type.endsWith("[]")) return parse(raw);
  const inner = raw.trim().replace(/^\[(.*)\]$/s, "$1").trim();
  if (inner === "") return [];
  return inner.split(",").map((part) => parse(part.trim().replace(/^["'](.*)["']$/, "$1")));
}
