/**
 * The index page of a published site: one row per run of the store, newest first, with its
 * command, preset, status, what its nodes did, whether its report is complete, and whether
 * `sent.lock.json` pins it.
 *
 * @example
 * ```ts ignore
 * import { siteIndex } from "./site_index.ts";
 * const html = siteIndex(entries, { store: "/p/.sent/store", lockRun: "2026…-a1b2c3" });
 * ```
 *
 * @module
 */

import { escapeHtml } from "./html.ts";
import type { RunSummary } from "./provenance.ts";

/** One run on the index. */
export interface SiteEntry {
  /** The run, as its page summarises it. */
  run: RunSummary;
  /** Page path relative to the site root. */
  page: string;
  /** The page's title. */
  title: string;
  /** Missing parts of its report. */
  missing: number;
  /** Figures drawn. */
  figures: number;
}

/** Options for {@link siteIndex}. */
export interface SiteIndexOptions {
  /** The store the runs used. */
  store: string;
  /** The run `sent.lock.json` names, if any. */
  lockRun: string | null;
}

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px; padding: 0 20px; color: #1d1d1f; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; } .note { color: #666; font-size: 13px; }
tr.failed td { color: #b42318; } code { font-size: 12px; }
`;

/**
 * The site's index page.
 *
 * @param entries One per run, in any order (shown newest first).
 * @param options Store and lock-file run.
 * @returns The HTML document.
 */
export function siteIndex(entries: readonly SiteEntry[], options: SiteIndexOptions): string {
  const sorted = [...entries].sort((
    a,
    b,
  ) => (a.run.id < b.run.id ? 1 : a.run.id > b.run.id ? -1 : 0));
  const rows = sorted.map((e) => {
    const states = Object.entries(e.run.states).map(([s, n]) => `${n} ${s}`).join(", ");
    const report = e.missing === 0 ? "complete" : `partial (${e.missing} missing)`;
    const pinned = e.run.id === options.lockRun ? "yes" : "";
    return `<tr class="${escapeHtml(e.run.status)}"><td><a href="${escapeHtml(e.page)}">${
      escapeHtml(e.run.id)
    }</a></td><td><code>${escapeHtml(e.run.command)}</code></td><td>${
      escapeHtml(e.run.preset)
    }</td><td>${escapeHtml(e.run.status)}</td><td>${escapeHtml(states)}</td><td class="num">${
      e.run.seconds.toFixed(1)
    }</td><td>${report}</td><td class="num">${e.figures}</td><td>${pinned}</td></tr>`;
  });
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>SENT runs</title>",
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style>`,
    "</head>",
    '<body data-figures="done">',
    "<h1>SENT runs</h1>",
    `<p class="note">${sorted.length} run${sorted.length === 1 ? "" : "s"} of the store ${
      escapeHtml(options.store)
    }, newest first; each page is that run's report, built from the artifacts its nodes used.</p>`,
    sorted.length === 0
      ? "<p>No run has been recorded for this store yet: run <code>deno task reproduce</code>.</p>"
      : `<table><thead><tr><th>run</th><th>command</th><th>preset</th><th>status</th><th>nodes</th><th>seconds</th><th>report</th><th>figures</th><th>pinned by sent.lock.json</th></tr></thead><tbody>${
        rows.join("")
      }</tbody></table>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
