/**
 * Download registered datasets and verify them: sha256 and row count where the registry knows
 * them (and says plainly when it does not), every row through the field mapping, then an atomic
 * write (temporary file + rename) so a failed or killed download never leaves a partial file.
 *
 * @module
 */

import { toProblemRows } from "./fields.ts";
import { DEFAULT_DATA_DIR, parseEntryFile, sha256Hex } from "./load_dataset.ts";
import { type DatasetEntry, datasetEntry } from "./registry.ts";

/** Options for {@link fetchDataset}. */
export interface FetchOptions {
  /** Output folder (default `.sent/datasets`). */
  outDir?: string;
  /** Mirror base URL: `<base>/<file>` replaces each entry's own URL. */
  baseUrl?: string;
}

/** Outcome of one dataset. */
export interface FetchReport {
  name: string;
  status: "ok" | "failed" | "skipped";
  url: string | null;
  /** Written (or already present) file. */
  path?: string;
  rows?: number;
  sha256?: string;
  /** What was verified and what could not be. */
  checks: string[];
  /** One-line explanation. */
  message: string;
}

async function verify(
  entry: DatasetEntry,
  bytes: Uint8Array,
  source: string,
): Promise<{ rows: number; sha256: string; checks: string[] }> {
  const sha256 = sha256Hex(bytes);
  const checks: string[] = [];
  if (entry.sha256 === null) checks.push("sha256 unknown in the registry: not verified");
  else if (sha256 !== entry.sha256) {
    throw new Error(`sha256 mismatch for ${source}: got ${sha256}, expected ${entry.sha256}`);
  } else checks.push("sha256 verified");
  const records = await parseEntryFile(entry, bytes, source);
  if (entry.rows === null) {
    checks.push(`row count unknown in the registry: found ${records.length}, not verified`);
  } else if (records.length !== entry.rows) {
    throw new Error(`${source} has ${records.length} rows, expected ${entry.rows}`);
  } else checks.push(`${records.length} rows verified`);
  const { rows, duplicatesDropped } = toProblemRows(records, entry.fields, {
    file: source,
    idPrefix: entry.name,
    dedupe: entry.dedupe,
  });
  checks.push(
    `all rows map to problems${
      duplicatesDropped > 0 ? ` (${rows.length} distinct, ${duplicatesDropped} repeats)` : ""
    }`,
  );
  return { rows: records.length, sha256, checks };
}

/**
 * Download and verify one registered dataset.
 *
 * @param name Registry key.
 * @param options Output folder and mirror URL.
 * @returns A report; failures are reported, not thrown (an unknown name does throw).
 */
export async function fetchDataset(name: string, options: FetchOptions = {}): Promise<FetchReport> {
  const entry = datasetEntry(name);
  const outDir = options.outDir ?? DEFAULT_DATA_DIR;
  const url = options.baseUrl !== undefined
    ? `${options.baseUrl.replace(/\/+$/, "")}/${entry.file}`
    : entry.url;
  if (url === null) {
    return {
      name,
      status: "skipped",
      url,
      checks: [],
      message:
        `no public URL serves the normalised ${entry.file}; pass --base-url pointing at a mirror of it`,
    };
  }
  const path = `${outDir}/${entry.file}`;
  try {
    const present = await Deno.readFile(path).catch(() => null);
    if (present !== null && entry.sha256 !== null && sha256Hex(present) === entry.sha256) {
      const { rows, sha256, checks } = await verify(entry, present, path);
      return { name, status: "ok", url, path, rows, sha256, checks, message: "already present" };
    }
    const response = await fetch(url);
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`HTTP ${response.status} ${response.statusText} from ${url}`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const { rows, sha256, checks } = await verify(entry, bytes, url);
    await Deno.mkdir(outDir, { recursive: true });
    const temp = await Deno.makeTempFile({
      dir: outDir,
      prefix: `.${entry.file}.`,
      suffix: ".partial",
    });
    try {
      await Deno.writeFile(temp, bytes);
      await Deno.rename(temp, path);
    } catch (e) {
      await Deno.remove(temp).catch(() => {});
      throw e;
    }
    return {
      name,
      status: "ok",
      url,
      path,
      rows,
      sha256,
      checks,
      message: `downloaded ${bytes.length} bytes`,
    };
  } catch (e) {
    return { name, status: "failed", url, checks: [], message: (e as Error).message };
  }
}

/**
 * Download and verify several datasets, one after another.
 *
 * @param names Registry keys.
 * @param options Output folder and mirror URL.
 * @returns One report per name, in order.
 */
export async function fetchDatasets(
  names: readonly string[],
  options: FetchOptions = {},
): Promise<FetchReport[]> {
  const reports: FetchReport[] = [];
  for (const name of names) reports.push(await fetchDataset(name, options));
  return reports;
}
