/**
 * Canonical JSON: the one serialisation that cache keys are hashed from.
 *
 * Object keys are sorted (by UTF-16 code unit, as `Array.prototype.sort` does), there is no
 * whitespace, and values JSON cannot represent faithfully (`undefined`, functions, symbols,
 * `NaN`, `±Infinity`, bigints) are errors rather than being dropped or turned into `null`, so
 * two configs that differ can never hash the same.
 *
 * @module
 */

/**
 * Serialise a value to canonical JSON.
 *
 * @param value Plain data: objects, arrays, strings, finite numbers, booleans, `null`.
 * @returns The canonical JSON text.
 * @example
 * ```ts
 * import { canonicalJson } from "./canonical_json.ts";
 * canonicalJson({ b: 1, a: [true, null] }); // '{"a":[true,null],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  return encode(value, "$");
}

function encode(value: unknown, path: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`canonicalJson: ${path} is ${value}; expected a finite number`);
      }
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        return `[${value.map((item, i) => encode(item, `${path}[${i}]`)).join(",")}]`;
      }
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).sort();
      const parts = keys.map((key) =>
        `${JSON.stringify(key)}:${encode(record[key], `${path}.${key}`)}`
      );
      return `{${parts.join(",")}}`;
    }
    default:
      throw new TypeError(
        `canonicalJson: ${path} is of type ${typeof value}; expected plain JSON data`,
      );
  }
}
