/**
 * The error every loader throws for bad input: it names the file, the line (or Parquet row) and
 * the field, so a bad row is found at once and never dropped silently.
 *
 * @module
 */

/** A bad row or file, located by file, line and field. */
export class DataError extends Error {
  /**
   * @param file Path or URL of the file.
   * @param line 1-based line (JSONL) or row (Parquet) number; 0 for the whole file.
   * @param field Offending field, or null when the whole row is bad.
   * @param problem What is wrong and what was expected.
   */
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string | null,
    problem: string,
  ) {
    super(`${file}:${line}: ${field === null ? "" : `field "${field}" `}${problem}`);
    this.name = "DataError";
  }
}
