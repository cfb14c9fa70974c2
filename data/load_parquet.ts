/**
 * Parquet reader on `hyparquet`: rows become plain objects, numbered from 1 like lines.
 *
 * @module
 */

import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { DataError } from "./load_errors.ts";
import type { SourceRecord } from "./load_jsonl.ts";

/**
 * Parse Parquet bytes into records.
 *
 * @param bytes The whole file.
 * @param file Name used in error messages.
 * @returns One record per row, `line` = 1-based row number.
 * @throws DataError when the bytes are not a readable Parquet file.
 */
export async function parseParquet(bytes: Uint8Array, file: string): Promise<SourceRecord[]> {
  const buffer = bytes.buffer.slice(
    bytes.byteOffset,
    bytes.byteOffset + bytes.byteLength,
  ) as ArrayBuffer;
  try {
    parquetMetadata(buffer);
  } catch (e) {
    throw new DataError(file, 0, null, `is not a readable Parquet file (${(e as Error).message})`);
  }
  const objects = await parquetReadObjects({ file: buffer });
  return objects.map((value, k) => ({ line: k + 1, value: value as Record<string, unknown> }));
}

/**
 * Read and parse a Parquet file.
 *
 * @param path File path.
 * @returns One record per row.
 */
export async function readParquet(path: string): Promise<SourceRecord[]> {
  return await parseParquet(await Deno.readFile(path), path);
}
