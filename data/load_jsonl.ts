/**
 * JSONL reader: one JSON object per line, each kept with its line number.
 *
 * @module
 */

import { DataError } from "./load_errors.ts";

/** One record of a file, with where it came from. */
export interface SourceRecord {
  /** 1-based line (JSONL) or row (Parquet) number. */
  line: number;
  /** The parsed object. */
  value: Record<string, unknown>;
}

/**
 * Parse JSONL text. Only a final empty line is allowed; any other blank line is an error.
 *
 * @param text File content.
 * @param file Name used in error messages.
 * @returns The records in file order.
 * @throws DataError naming the line that is not a JSON object.
 * @example
 * ```ts
 * parseJsonl('{"a":1}\n{"a":2}\n', "x.jsonl").length; // 2
 * ```
 */
export function parseJsonl(text: string, file: string): SourceRecord[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1].trim() === "") lines.pop();
  return lines.map((raw, k) => {
    const line = k + 1;
    if (raw.trim() === "") {
      throw new DataError(file, line, null, "is empty (expected a JSON object)");
    }
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new DataError(file, line, null, `is not valid JSON (${(e as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new DataError(
        file,
        line,
        null,
        `is ${Array.isArray(value) ? "an array" : typeof value} (expected a JSON object)`,
      );
    }
    return { line, value: value as Record<string, unknown> };
  });
}

/**
 * Read and parse a JSONL file.
 *
 * @param path File path.
 * @returns The records in file order.
 */
export async function readJsonl(path: string): Promise<SourceRecord[]> {
  return parseJsonl(await Deno.readTextFile(path), path);
}
