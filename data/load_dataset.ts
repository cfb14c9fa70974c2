/**
 * One entry point for every dataset: built-in tiny-AIME splits are generated, registered ones are
 * read from the data directory and mapped to {@link ProblemRow}s.
 *
 * @example
 * ```ts
 * import { loadDataset } from "./load_dataset.ts";
 * const heldOut = await loadDataset("tiny-aime24", { seed: 0, size: 8 });
 * heldOut.rows.length; // 8
 * ```
 *
 * A registered benchmark, once `deno task fetch-data aime24` has downloaded it (not run here):
 *
 * ```ts ignore
 * import { loadDataset } from "./load_dataset.ts";
 * const aime = await loadDataset("aime24", { dataDir: ".sent/datasets", verify: true });
 * aime.rows.length; // 30
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type ExtractorConfig, TINY_AIME_EXTRACTION } from "./extract.ts";
import { toProblemRows } from "./fields.ts";
import { DataError } from "./load_errors.ts";
import { parseJsonl, type SourceRecord } from "./load_jsonl.ts";
import { parseParquet } from "./load_parquet.ts";
import { type DatasetEntry, datasetEntry } from "./registry.ts";
import type { ProblemRow } from "./rows.ts";
import {
  generateTinyAime,
  SPLITS,
  type TinyAimeKnobs,
  type TinyAimeSplit,
} from "./tiny_aime/mod.ts";

/** Default folder of downloaded datasets (git-ignored). */
export const DEFAULT_DATA_DIR = ".sent/datasets";

/** Options for {@link loadDataset}. */
export interface LoadOptions {
  /** Folder holding registered files (default {@link DEFAULT_DATA_DIR}). */
  dataDir?: string;
  /** Check sha256 and row count against the registry where they are known (default false). */
  verify?: boolean;
  /** Seed of a built-in split (default 0). */
  seed?: number | string;
  /** Size of a built-in split (default: the split's size). */
  size?: number;
  /** Difficulty knobs of a built-in split (default: the task's defaults). */
  knobs?: TinyAimeKnobs;
}

/** A loaded dataset. */
export interface LoadedDataset {
  name: string;
  rows: ProblemRow[];
  /** File path, or `builtin`. */
  source: string;
  /** Rows dropped as repeated problems (datasets with `dedupe`). */
  duplicatesDropped: number;
  /** How answers to this dataset are extracted. */
  extraction: ExtractorConfig;
}

/** Names of the built-in splits. */
export const BUILTIN_DATASETS: readonly TinyAimeSplit[] = Object.keys(SPLITS) as TinyAimeSplit[];

/**
 * Hex sha256 of bytes.
 *
 * @param bytes Data.
 * @returns Lower-case hex digest.
 */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Parse a registered file's bytes into source records, by its format.
 *
 * @param entry Registry entry.
 * @param bytes File content.
 * @param file Name for error messages.
 * @returns The records.
 */
export async function parseEntryFile(
  entry: DatasetEntry,
  bytes: Uint8Array,
  file: string,
): Promise<SourceRecord[]> {
  return entry.format === "jsonl"
    ? parseJsonl(new TextDecoder("utf-8", { fatal: true }).decode(bytes), file)
    : await parseParquet(bytes, file);
}

/**
 * Load a dataset by name.
 *
 * @param name A built-in split (`tiny-aime-train`, `tiny-aime24`, `tiny-aime25`) or a registry key.
 * @param options Data folder, verification, built-in seed, size and knobs.
 * @returns Rows, source, dropped duplicates and the dataset's extractor config.
 * @throws DataError for a bad file or row (file, line, field); Error for an unknown name.
 */
export async function loadDataset(name: string, options: LoadOptions = {}): Promise<LoadedDataset> {
  if ((BUILTIN_DATASETS as readonly string[]).includes(name)) {
    const { rows } = generateTinyAime(name as TinyAimeSplit, {
      seed: options.seed,
      size: options.size,
      knobs: options.knobs,
    });
    return {
      name,
      rows,
      source: "builtin",
      duplicatesDropped: 0,
      extraction: TINY_AIME_EXTRACTION,
    };
  }
  const entry = registeredEntry(name);
  const path = `${options.dataDir ?? DEFAULT_DATA_DIR}/${entry.file}`;
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DataError(
        path,
        0,
        null,
        `does not exist; run \`deno task fetch-data ${name}\` first`,
      );
    }
    throw e;
  }
  if (options.verify && entry.sha256 !== null) {
    const got = sha256Hex(bytes);
    if (got !== entry.sha256) {
      throw new DataError(path, 0, null, `has sha256 ${got} (expected ${entry.sha256})`);
    }
  }
  const records = await parseEntryFile(entry, bytes, path);
  if (options.verify && entry.rows !== null && records.length !== entry.rows) {
    throw new DataError(path, 0, null, `has ${records.length} rows (expected ${entry.rows})`);
  }
  const { rows, duplicatesDropped } = toProblemRows(records, entry.fields, {
    file: path,
    idPrefix: name,
    dedupe: entry.dedupe,
  });
  return { name, rows, source: path, duplicatesDropped, extraction: entry.extraction };
}

/** The registry entry of `name`; an unknown name's error lists the built-in splits too. */
function registeredEntry(name: string): DatasetEntry {
  try {
    return datasetEntry(name);
  } catch (e) {
    throw new Error(`${(e as Error).message}; built-in: ${BUILTIN_DATASETS.join(", ")}`);
  }
}
