/**
 * Best and second-best marks of a table row, as the paper prints them: the best value bold, the
 * second underlined.
 *
 * Values are compared as they are printed (rounded to the table's decimals), so two cells that
 * read the same are tied, whatever their unrounded difference. Ties share the mark: every cell
 * tied for the best is bold, and "second" is the next distinct printed value (all cells tied at
 * it are underlined). When every value is equal they are all best and there is no second.
 * Missing values (`null`) get no mark and do not count.
 *
 * @example
 * ```ts
 * import { rankMarks } from "./rank.ts";
 * rankMarks([40, 63.333, 63.334, null, 50]); // [null, "best", "best", null, "second"]
 * rankMarks([1, 2, 3], { higherIsBetter: false }); // ["best", "second", null]
 * ```
 *
 * @module
 */

/** A cell's mark. */
export type Mark = "best" | "second" | null;

/** Options for {@link rankMarks}. */
export interface RankOptions {
  /** Decimals the table prints (default 2). */
  digits?: number;
  /** Whether larger is better (default true: accuracies). */
  higherIsBetter?: boolean;
}

/**
 * Mark the best and second-best values of a row.
 *
 * @param values The row's values, `null` where a cell is empty.
 * @param options Printed decimals and direction.
 * @returns One mark per value.
 */
export function rankMarks(values: readonly (number | null)[], options: RankOptions = {}): Mark[] {
  const digits = options.digits ?? 2;
  const sign = (options.higherIsBetter ?? true) ? 1 : -1;
  const printed = values.map((v) =>
    v === null || !Number.isFinite(v) ? null : sign * Number(v.toFixed(digits))
  );
  // Distinct printed values, best first.
  const distinct = [...new Set(printed.filter((v): v is number => v !== null))].sort((a, b) =>
    b - a
  );
  const [best, second] = distinct;
  return printed.map((
    v,
  ) => (v === null ? null : v === best ? "best" : v === second ? "second" : null));
}
