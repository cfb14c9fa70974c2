/**
 * `deno task publish --out DIR`: a static site of a store's runs, ready for GitHub Pages.
 *
 * ```
 * DIR/index.html             every recorded run of the store, newest first
 * DIR/runs/<run id>/…        that run's report (the layout of reports/write.ts), with a
 *                            "this run" section from its record: what each node did, errors
 * DIR/vendor/*.min.js        Vega, Vega-Lite, Vega-Embed, shared by the pages
 * DIR/.nojekyll              serve files as they are (GitHub Pages)
 * DIR/site.json              marks the folder as a published site (format, runs)
 * ```
 *
 * A run's page is built from the artifacts its record names (nodes that ran or were cached), so
 * a failed or interrupted run still gets a page that shows what there is and lists what is
 * missing: the nodes that failed (with the error), were skipped or never finished, and
 * artifacts removed from the store since. Runs belong to a store by the `--store` of their
 * command line (the default store when absent).
 *
 * The site is a function of the run records, the store's artifacts and the lock file: nothing
 * reads a clock, so publishing twice gives byte-identical folders. The folder is built beside
 * DIR and swapped in; an existing DIR is replaced only if it is empty or a site published
 * before (it has `site.json`).
 *
 * @example
 * ```ts ignore
 * import { publishSite } from "./publish.ts";
 * const site = await publishSite({ store, stateDir, lockFile, root, out: "/p/.sent/site" });
 * site.index; // "/p/.sent/site/index.html"
 * ```
 *
 * @module
 */

import { UsageError } from "../pipeline/errors.ts";
import { listRunRecords, readLockFile, type RunRecord, statePaths } from "../pipeline/records.ts";
import type { ArtifactStore } from "../pipeline/store.ts";
import { buildReport } from "./build.ts";
import { loadInputs } from "./inputs.ts";
import { describeMachine } from "./machine.ts";
import { runArtifacts } from "./run_artifacts.ts";
import { type SiteEntry, siteIndex } from "./site_index.ts";
import { reportToolVersions } from "./tool_versions.ts";
import { BROWSER_SCRIPTS, readVendorFile } from "./vendor.ts";
import { writeReport } from "./write.ts";

/** The marker file of a published site. */
export const SITE_MARKER = "site.json";

/** Options for {@link publishSite}. */
export interface PublishOptions {
  /** The store whose runs are published. */
  store: ArtifactStore;
  /** The folder holding `runs/` (beside the store). */
  stateDir: string;
  /** The store's `sent.lock.json`. */
  lockFile: string;
  /** Project root (relative `--store` values in run records are taken from it). */
  root: string;
  /** Site folder (absolute). */
  out: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What {@link publishSite} returns. */
export interface Published {
  /** The index page. */
  index: string;
  /** Runs published. */
  runs: number;
}

/** The `--store` a recorded command used, as given (null for the default store). */
function storeArgument(argv: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--store") return argv[i + 1] ?? null;
    if (argv[i].startsWith("--store=")) return argv[i].slice("--store=".length);
  }
  return null;
}

/** Whether a run record used this store. */
function usedStore(record: RunRecord, root: string, store: string): boolean {
  return statePaths(root, storeArgument(record.argv) ?? undefined).store === store;
}

async function isSiteOrEmpty(dir: string): Promise<boolean> {
  try {
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    return names.length === 0 || names.includes(SITE_MARKER);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    if (error instanceof Deno.errors.NotADirectory) return false;
    throw error;
  }
}

/** A run id is a folder name (timestamp and hex); anything else is not used as a path. */
const RUN_ID = /^[0-9A-Za-z.:_-]+$/;

/**
 * Publish a store's runs as a static site.
 *
 * @param options Store, state folder, lock file, root, output folder.
 * @returns The index path and the number of runs.
 * @throws {UsageError} When `out` exists and is neither empty nor a published site.
 */
export async function publishSite(options: PublishOptions): Promise<Published> {
  const { store, out } = options;
  const log = options.log ?? (() => {});
  if (!(await isSiteOrEmpty(out))) {
    throw new UsageError(
      `--out ${out} is a folder that is not a published site (no ${SITE_MARKER}); expected an empty ` +
        "or new folder, or one that publish wrote before",
    );
  }
  const records = (await listRunRecords(options.stateDir))
    .filter((r) => RUN_ID.test(r.id) && usedStore(r, options.root, store.root))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const lock = await readLockFile(options.lockFile);
  const machine = describeMachine();
  const tools = await reportToolVersions();

  const temp = `${out}.publishing-${Deno.pid}`;
  await Deno.remove(temp, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${temp}/vendor`, { recursive: true });
  try {
    const entries: SiteEntry[] = [];
    for (const record of records) {
      const found = await runArtifacts(store, record);
      const inputs = await loadInputs(found.artifacts, found.config);
      const report = buildReport(inputs, {
        machine,
        tools,
        run: record,
        lock,
        configFromSlices: found.configFromSlices,
        alsoMissing: found.gone,
      });
      const results = found.artifacts.find((a) => a.stage === "results");
      await writeReport(report, `${temp}/runs/${record.id}`, {
        resultsFile: results ? `${results.dir}/results.json` : null,
        vendor: "../../vendor/",
        home: "../../index.html",
      });
      entries.push({
        run: report.provenance.run!,
        page: `runs/${record.id}/index.html`,
        title: report.title,
        missing: report.missing.length,
        figures: report.figures.length,
      });
      log(`published run ${record.id} (${record.status}, ${report.figures.length} figures)`);
    }
    for (const script of BROWSER_SCRIPTS) {
      await Deno.writeFile(`${temp}/vendor/${script.as}`, await readVendorFile(script));
    }
    await Deno.writeTextFile(
      `${temp}/index.html`,
      siteIndex(entries, { store: store.root, lockRun: lock?.run ?? null }),
    );
    await Deno.writeTextFile(`${temp}/.nojekyll`, "");
    await Deno.writeTextFile(
      `${temp}/${SITE_MARKER}`,
      JSON.stringify(
        {
          format: "sent-site/1",
          store: store.root,
          runs: entries.map((e) => e.run.id),
        },
        null,
        2,
      ) + "\n",
    );
    await Deno.remove(out, { recursive: true }).catch((error) => {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    });
    await Deno.rename(temp, out);
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw error;
  }
  return { index: `${out}/index.html`, runs: records.length };
}
