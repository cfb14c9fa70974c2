/**
 * Write a report folder from the report model:
 *
 * ```
 * index.html                  the page (works offline)
 * results.json                copied byte for byte from the results stage
 * provenance.json             the provenance section as data
 * tables/tables.md, .html     Pass@k, Avg@k, greedy and the paired comparisons
 * tables/results.csv          every per-seed number: set, policy, seed, metric, k, value
 * tables/summary.csv          mean, se, seeds per set, policy, metric, k
 * tables/paired.csv           the paired comparisons
 * figures/<id>.vl.json        each figure's Vega-Lite spec, data inlined
 * figures/<id>.svg, .png      rendered (as report.formats asks)
 * vendor/*.min.js             Vega, Vega-Lite, Vega-Embed (when the page embeds figures)
 * ```
 *
 * Nothing here reads a clock or the machine: the same model gives the same bytes.
 *
 * @example
 * ```ts ignore
 * import { writeReport } from "./write.ts";
 * const files = await writeReport(report, ctx.outDir, { resultsFile });
 * ```
 *
 * @module
 */

import * as aq from "arquero";
import type { Report } from "./build.ts";
import { seedFrame, summarizeSeeds } from "./frames.ts";
import { pairedHtml, pairedMarkdown } from "./paired_text.ts";
import { reportPage } from "./page.ts";
import { renderPng, renderSvg } from "./render.ts";
import { tableHtml, tableMarkdown } from "./table_text.ts";
import { BROWSER_SCRIPTS, readVendorFile } from "./vendor.ts";

/** Options for {@link writeReport}. */
export interface WriteOptions {
  /** `results.json` to copy (from the results stage), if any. */
  resultsFile?: string | null;
  /**
   * Where the page finds the Vega scripts: `local` copies them into `vendor/` of this folder
   * (default); a string is a relative folder that already holds them (a published site's).
   */
  vendor?: "local" | string;
  /** Link back to the index of runs (published run pages). */
  home?: string;
  /** Called for each figure rendered, for progress. */
  onFigure?: (id: string) => void;
}

/** What {@link writeReport} returns. */
export interface Written {
  /** Files written, relative to the folder, sorted. */
  files: string[];
  /** Warnings of the figure compilers (expected: none). */
  warnings: string[];
}

async function writeText(dir: string, file: string, text: string, files: string[]): Promise<void> {
  const path = `${dir}/${file}`;
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  await Deno.writeTextFile(path, text);
  files.push(file);
}

async function writeBytes(
  dir: string,
  file: string,
  bytes: Uint8Array,
  files: string[],
): Promise<void> {
  const path = `${dir}/${file}`;
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  await Deno.writeFile(path, bytes);
  files.push(file);
}

/** The tables as one Markdown document and one HTML document. */
function tablesDocuments(report: Report): { md: string; html: string } {
  const md = [
    `# ${report.title}: tables`,
    "",
    ...report.tables.map(tableMarkdown),
    pairedMarkdown(report.paired),
  ].join("\n");
  const html = [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><title>tables</title>',
    '<link rel="icon" href="data:,">',
    "<style>table{border-collapse:collapse;margin:12px 0}th,td{padding:3px 8px;border-bottom:1px solid #eee;" +
    "text-align:right}.ref{background:#f7f7f7}.ref-start{border-left:3px double #999}.pm{color:#777}" +
    "</style></head><body>",
    ...report.tables.map(tableHtml),
    pairedHtml(report.paired),
    "</body></html>",
    "",
  ].join("\n");
  return { md, html };
}

/** The CSV files: per-seed numbers, their summary, and the paired comparisons. */
function csvFiles(report: Report): Record<string, string> {
  const out: Record<string, string> = {};
  if (report.results !== null) {
    const seeds = seedFrame(report.results);
    out["tables/results.csv"] = seeds.toCSV() + "\n";
    out["tables/summary.csv"] = summarizeSeeds(seeds, ["set", "policy", "metric", "k"]).toCSV() +
      "\n";
  } else {
    out["tables/results.csv"] = "set,policy,seed,metric,k,value\n";
    out["tables/summary.csv"] = "set,policy,metric,k,mean,se,seeds\n";
  }
  out["tables/paired.csv"] = report.paired.length > 0
    ? aq.from(report.paired).toCSV() + "\n"
    : "set,policy,reference,k,delta,lo,hi,problems,seeds\n";
  return out;
}

/**
 * Write the report into a folder (which should be empty).
 *
 * @param report The report model.
 * @param dir Target folder (created).
 * @param options Results file to copy, where the scripts live, a link home.
 * @returns The files written and any compiler warnings.
 */
export async function writeReport(
  report: Report,
  dir: string,
  options: WriteOptions = {},
): Promise<Written> {
  const files: string[] = [];
  const warnings: string[] = [];
  await Deno.mkdir(dir, { recursive: true });

  // ── figures ────────────────────────────────────────────────────────────────────────────
  const svgWanted = report.formats.includes("svg") || report.formats.includes("png");
  for (const figure of report.figures) {
    await writeText(
      dir,
      `figures/${figure.id}.vl.json`,
      JSON.stringify(figure.spec, null, 2) + "\n",
      files,
    );
    if (!svgWanted) continue;
    const own: string[] = [];
    const svg = await renderSvg(figure.spec, own);
    warnings.push(...own.map((w) => `${figure.id}: ${w}`));
    if (report.formats.includes("svg")) {
      await writeText(dir, `figures/${figure.id}.svg`, svg, files);
    }
    if (report.formats.includes("png")) {
      await writeBytes(dir, `figures/${figure.id}.png`, await renderPng(svg), files);
    }
    options.onFigure?.(figure.id);
  }

  // ── tables, data, provenance ────────────────────────────────────────────────────────────
  const { md, html } = tablesDocuments(report);
  await writeText(dir, "tables/tables.md", md, files);
  await writeText(dir, "tables/tables.html", html, files);
  for (const [file, text] of Object.entries(csvFiles(report))) {
    await writeText(dir, file, text, files);
  }
  if (options.resultsFile) {
    await writeBytes(dir, "results.json", await Deno.readFile(options.resultsFile), files);
  }
  await writeText(dir, "provenance.json", JSON.stringify(report.provenance, null, 2) + "\n", files);

  // ── scripts and page ────────────────────────────────────────────────────────────────────
  const vendor = options.vendor ?? "local";
  const interactive = report.formats.includes("html") && report.figures.length > 0;
  if (interactive && vendor === "local") {
    for (const script of BROWSER_SCRIPTS) {
      await writeBytes(dir, `vendor/${script.as}`, await readVendorFile(script), files);
    }
  }
  const listed = [...files, "index.html"].sort();
  await writeText(
    dir,
    "index.html",
    reportPage(report, {
      vendorBase: vendor === "local" ? "vendor/" : vendor,
      files: listed.filter((f) => !f.startsWith("vendor/")),
      home: options.home,
    }),
    files,
  );
  return { files: files.sort(), warnings };
}
