/**
 * Field mapping: how a dataset's records become {@link ProblemRow}s. Paths are dotted and may
 * index arrays (`prompt.0.content`). Every row is checked; a bad one throws a `DataError` with
 * file, line and field.
 *
 * @module
 */

import { DataError } from "./load_errors.ts";
import type { SourceRecord } from "./load_jsonl.ts";
import type { ProblemRow } from "./rows.ts";

/** Where each row field lives in a source record. */
export interface FieldMap {
  /** Id path; without it rows are numbered `<prefix>-<line>`. */
  id?: string;
  /** Problem text path (required, string). */
  problem: string;
  /** Gold answer path (required, string or finite number). */
  answer: string;
  /** Solution path (optional; string or null). */
  solution?: string;
  /** Difficulty level path (optional; integer or null). */
  level?: string;
}

/** Options for {@link toProblemRows}. */
export interface ToRowsOptions {
  /** File name for error messages. */
  file: string;
  /** Prefix for generated ids when the map has no `id`. */
  idPrefix: string;
  /** Drop later rows whose problem text repeats an earlier one (counted, never silent). */
  dedupe?: boolean;
}

/** Rows and how many repeated problems were dropped by `dedupe`. */
export interface RowsResult {
  rows: ProblemRow[];
  duplicatesDropped: number;
}

/** Follow a dotted path; undefined when any step is missing. */
export function getPath(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function describe(v: unknown): string {
  return v === undefined
    ? "is missing"
    : `has ${v === null ? "null" : Array.isArray(v) ? "an array" : `type ${typeof v}`}`;
}

/**
 * Convert source records into problem rows.
 *
 * @param records Records from a JSONL or Parquet reader.
 * @param fields The field mapping.
 * @param options File name, id prefix, dedupe.
 * @returns Rows in record order and the number of dropped duplicates.
 * @throws DataError for a missing or mistyped field, or a repeated id.
 */
export function toProblemRows(
  records: readonly SourceRecord[],
  fields: FieldMap,
  options: ToRowsOptions,
): RowsResult {
  const { file } = options;
  const ids = new Map<string, number>();
  const problems = new Set<string>();
  const rows: ProblemRow[] = [];
  let duplicatesDropped = 0;
  for (const { line, value } of records) {
    const text = (path: string, allowNumber: boolean): string => {
      const v = getPath(value, path);
      if (typeof v === "string") return v;
      if (allowNumber && typeof v === "number" && Number.isFinite(v)) return String(v);
      throw new DataError(
        file,
        line,
        path,
        `${describe(v)} (expected a string${allowNumber ? " or number" : ""})`,
      );
    };
    const id = fields.id === undefined ? `${options.idPrefix}-${line}` : text(fields.id, true);
    const problem = text(fields.problem, false);
    const answer = text(fields.answer, true);
    if (problem.trim() === "") {
      throw new DataError(file, line, fields.problem, "is empty (expected problem text)");
    }
    if (answer.trim() === "") {
      throw new DataError(file, line, fields.answer, "is empty (expected a gold answer)");
    }
    let solution: string | null = null;
    if (fields.solution !== undefined) {
      const v = getPath(value, fields.solution);
      if (typeof v === "string") solution = v;
      else if (v !== null && v !== undefined) {
        throw new DataError(
          file,
          line,
          fields.solution,
          `${describe(v)} (expected a string or null)`,
        );
      }
    }
    let level: number | null = null;
    if (fields.level !== undefined) {
      const v = getPath(value, fields.level);
      if (typeof v === "number" && Number.isInteger(v)) level = v;
      else if (typeof v === "bigint") level = Number(v);
      else if (v !== null && v !== undefined) {
        throw new DataError(
          file,
          line,
          fields.level,
          `${describe(v)} (expected an integer or null)`,
        );
      }
    }
    if (options.dedupe) {
      if (problems.has(problem)) {
        duplicatesDropped++;
        continue;
      }
      problems.add(problem);
    }
    const earlier = ids.get(id);
    if (earlier !== undefined) {
      throw new DataError(
        file,
        line,
        fields.id ?? "id",
        `"${id}" repeats line ${earlier} (expected unique ids)`,
      );
    }
    ids.set(id, line);
    rows.push({ id, problem, answer, solution, difficulty: level === null ? null : { level } });
  }
  return { rows, duplicatesDropped };
}
