/**
 * The report page (`index.html`): what is missing, the paper-form tables and the paired
 * comparisons, every figure, and the provenance — one static file that works offline.
 *
 * Figures are Vega-Lite specs inlined in the page (one JSON block, no fetch) and drawn by
 * Vega-Embed from scripts in the site's own `vendor/` folder; with `html` left out of
 * `report.formats` the page shows the rendered SVG files instead and loads no script. The page
 * makes no request outside its folder: no CDN, no web font, no favicon fetch.
 *
 * When every view has been drawn the page sets `data-figures="done"` on `<body>` (a view that
 * fails is marked `data-rendered="error"` and logs the error), which the browser test waits for.
 *
 * @example
 * ```ts ignore
 * import { reportPage } from "./page.ts";
 * const html = reportPage(report, { vendorBase: "vendor/", files });
 * ```
 *
 * @module
 */

import type { Report } from "./build.ts";
import { escapeHtml, scriptJson } from "./html.ts";
import { pairedHtml } from "./paired_text.ts";
import type { Provenance } from "./provenance.ts";
import { tableHtml } from "./table_text.ts";
import { BROWSER_SCRIPTS } from "./vendor.ts";

/** Options for {@link reportPage}. */
export interface PageOptions {
  /** Folder of the Vega scripts relative to the page, ending in `/` (e.g. `vendor/`). */
  vendorBase: string;
  /** Files of the report folder to list, relative paths. */
  files: readonly string[];
  /** Link back to an index of runs (published run pages). */
  home?: string;
}

const CSS = `
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 20px; }
header { border-bottom: 1px solid #ddd; padding-bottom: 8px; }
h1 { font-size: 26px; margin: 20px 0 4px; } h2 { margin-top: 36px; border-bottom: 1px solid #eee; }
nav a { margin-right: 14px; } .lead { color: #555; margin: 4px 0; }
.warn { background: #fff4e5; border: 1px solid #f0b429; padding: 4px 16px; border-radius: 6px; }
table { border-collapse: collapse; margin: 12px 0 4px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th[scope=row], td.text, th.text { text-align: left; } thead th[colspan] { text-align: center; }
table.paper .ref { background: #f7f7f7; } table.paper .ref-start { border-left: 3px double #999; }
table.paper tr.avg th, table.paper tr.avg td { border-top: 2px solid #999; font-weight: 500; }
td.best b { font-weight: 700; } .pm { color: #777; font-size: 12px; }
tr.higher td:last-child { color: #1a7f37; } tr.lower td:last-child { color: #b42318; }
.note { color: #666; font-size: 13px; max-width: 900px; }
.scroll { overflow-x: auto; } table.wrap td { white-space: normal; min-width: 8em; } .tables-side { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 24px 0; } figcaption { color: #444; font-size: 14px; max-width: 900px; }
.view { min-height: 40px; } .view img { max-width: 100%; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; font-size: 12px; }
code, .key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
ul.files { columns: 2; font-size: 13px; }
`;

const EMBED_SCRIPT = `
(() => {
  const specs = JSON.parse(document.getElementById("figure-specs").textContent);
  const views = [...document.querySelectorAll("[data-figure]")];
  Promise.all(views.map((el) =>
    vegaEmbed(el, specs[el.dataset.figure], { actions: false, renderer: "svg" })
      .then(() => { el.dataset.rendered = "true"; })
      .catch((error) => {
        el.dataset.rendered = "error";
        el.textContent = "This figure could not be drawn: " + error.message;
        console.error(error);
      })
  )).then(() => { document.body.dataset.figures = "done"; });
})();
`;

function list(items: readonly string[]): string {
  return `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>`;
}

function simpleTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  cls = "",
): string {
  return `<div class="scroll"><table${cls ? ` class="${cls}"` : ""}><thead><tr>${
    head.map((h) => `<th class="text">${escapeHtml(h)}</th>`).join("")
  }</tr></thead><tbody>${
    rows.map((r) => `<tr>${r.map((c) => `<td class="text">${escapeHtml(c)}</td>`).join("")}</tr>`)
      .join("")
  }</tbody></table></div>`;
}

/** The header's one-line summary. */
function lead(report: Report): string {
  const p = report.provenance;
  if (p.run) {
    const states = Object.entries(p.run.states).map(([s, n]) => `${n} ${s}`).join(", ");
    return `Run ${p.run.id} · ${p.run.command} · preset ${p.run.preset} · ${p.run.status} · ${states}`;
  }
  const made = p.nodes.filter((n) => n.madeBy === p.newestRun).length;
  return `${p.nodes.length} artifacts · ${made} made by run ${p.newestRun ?? "—"}, ` +
    `${p.nodes.length - made} reused from earlier runs`;
}

function missingSection(report: Report): string {
  if (report.missing.length === 0) return "";
  return `<section id="missing" class="warn"><h2>Missing</h2><p>This report is partial; it ` +
    `lacks:</p>${list(report.missing)}</section>`;
}

function tablesSection(report: Report): string {
  if (report.tables.length === 0) {
    return '<section id="tables"><h2>Tables</h2><p>No results.json in this run: no tables.</p></section>';
  }
  const side = report.tables.map((t) => `<div class="scroll">${tableHtml(t)}</div>`).join("");
  return `<section id="tables"><h2>Tables</h2><div class="tables-side">${side}</div>` +
    `<h3 id="paired">Paired comparisons (Avg@k, method − reference)</h3><div class="scroll">${
      pairedHtml(report.paired)
    }</div><p class="note">Also as Markdown (<a href="tables/tables.md">tables.md</a>), HTML ` +
    `(<a href="tables/tables.html">tables.html</a>) and CSV (<a href="tables/results.csv">results.csv</a>, ` +
    `<a href="tables/summary.csv">summary.csv</a>, <a href="tables/paired.csv">paired.csv</a>); the raw ` +
    `results: <a href="results.json">results.json</a>.</p></section>`;
}

function figuresSection(report: Report, interactive: boolean): string {
  const svg = report.formats.includes("svg");
  const png = report.formats.includes("png");
  const figures = report.figures.map((f) => {
    const links = [
      `<a href="figures/${f.id}.vl.json">Vega-Lite spec</a>`,
      ...(svg ? [`<a href="figures/${f.id}.svg">SVG</a>`] : []),
      ...(png ? [`<a href="figures/${f.id}.png">PNG</a>`] : []),
    ].join(" · ");
    const view = interactive
      ? `<div class="view" data-figure="${f.id}"></div>`
      : svg
      ? `<div class="view"><img src="figures/${f.id}.svg" alt="${escapeHtml(f.title)}"></div>`
      : `<div class="view"><p>Not rendered (report.formats has neither html nor svg).</p></div>`;
    return `<figure id="fig-${f.id}">${view}<figcaption><b>${escapeHtml(f.title)}.</b> ${
      escapeHtml(f.caption)
    } ${links}</figcaption></figure>`;
  }).join("\n");
  const skipped = report.skipped.length === 0
    ? ""
    : `<p class="note">Not drawn:</p>${list(report.skipped.map((s) => `${s.title}: ${s.reason}`))}`;
  return `<section id="figures"><h2>Figures</h2>${figures}${skipped}</section>`;
}

function provenanceSection(p: Provenance): string {
  const parts: string[] = [];
  if (p.run) {
    parts.push(
      `<h3>This run</h3>${
        simpleTable(["", ""], [
          ["run", p.run.id],
          ["command", p.run.command],
          ["preset", p.run.preset],
          ["overrides", p.run.overrides.join(" ") || "—"],
          ["status", p.run.status],
          ["started", p.run.startedAt],
          ["finished", p.run.finishedAt || "—"],
          ["node seconds", p.run.seconds.toFixed(2)],
        ], "wrap")
      }`,
    );
  }
  parts.push(
    `<h3>Versions and machine</h3>${
      simpleTable(
        ["what", "value", "nodes"],
        [
          ...p.versions.map((v) => ["versions", v.value, `${v.nodes} (${v.stages})`]),
          ...p.engines.map((
            e,
          ) => ["execution provider · dtype · ORT", e.value, `${e.nodes} (${e.stages})`]),
          ...(p.machine
            ? [[
              "report built on",
              `${p.machine.cpu} · ${p.machine.cores} cores · ${p.machine.memoryGiB} GiB · ${p.machine.os}`,
              "",
            ]]
            : []),
          ...Object.entries(p.tools).map((
            [name, version],
          ) => ["report package", `${name} ${version}`, ""]),
        ],
      )
    }`,
  );
  parts.push(`<h3>Seeds</h3>${list(p.seeds.length > 0 ? p.seeds : ["none in the config"])}`);
  parts.push(
    `<h3>Inferred method choices</h3><p class="note">What the paper and its reference code do not ` +
      `pin down, and this run's values.</p>${
        simpleTable(
          ["choice", "applies to", "this run", "basis"],
          p.inferred.map((c) => [c.choice, c.appliesTo, c.values.join("; "), c.basis]),
          "wrap",
        )
      }`,
  );
  parts.push(
    `<h3>Stage durations</h3>${
      simpleTable(
        ["stage", "nodes", "seconds"],
        p.stages.map((s) => [s.stage, String(s.nodes), s.seconds.toFixed(2)]),
      )
    }`,
  );
  const runPage = p.run !== undefined;
  parts.push(
    `<h3>Nodes and cache keys</h3><p class="note">${
      runPage
        ? "State: what this run did with the node (ran, cached, failed, skipped); “in sent.lock.json”: " +
          "whether the store's lock file pins this node at this key now."
        : "These keys are what sent.lock.json records for this run; “made by” is the run that " +
          `computed the artifact (the newest is ${
            escapeHtml(p.newestRun ?? "—")
          }; older ones were reused from the cache).`
    }</p>${
      simpleTable(
        [
          "node",
          ...(runPage ? ["state", "in sent.lock.json"] : []),
          "cache key",
          "made by run",
          "started",
          "seconds",
          "engine",
        ],
        p.nodes.map((n) => [
          n.node,
          ...(runPage ? [n.state ?? "—", n.pinned ? "yes" : "no"] : []),
          n.key,
          n.madeBy === ""
            ? "—"
            : n.madeBy === p.newestRun && !runPage
            ? `${n.madeBy} (newest)`
            : n.madeBy,
          n.startedAt || "—",
          n.seconds.toFixed(2),
          n.engine || "—",
        ]),
        "nodes",
      )
    }`,
  );
  parts.push(
    `<h3>Resolved config</h3>${
      p.configFromSlices
        ? '<p class="note">Rebuilt from the config slices the stages recorded (the run has no report node).</p>'
        : ""
    }<details><summary>show the config</summary><pre>${
      escapeHtml(JSON.stringify(p.config, null, 2))
    }</pre></details>`,
  );
  return `<section id="provenance"><h2>Provenance</h2>${parts.join("\n")}</section>`;
}

function filesSection(files: readonly string[]): string {
  return `<section id="files"><h2>Files</h2><ul class="files">${
    files.map((f) => `<li><a href="${escapeHtml(f)}">${escapeHtml(f)}</a></li>`).join("")
  }</ul></section>`;
}

/**
 * The report page.
 *
 * @param report The report model.
 * @param options Where the scripts are, which files to list, a link home.
 * @returns The HTML document.
 */
export function reportPage(report: Report, options: PageOptions): string {
  const interactive = report.formats.includes("html") && report.figures.length > 0;
  const specs = Object.fromEntries(report.figures.map((f) => [f.id, f.spec]));
  const scripts = interactive
    ? BROWSER_SCRIPTS.map((s) => `<script src="${escapeHtml(options.vendorBase + s.as)}"></script>`)
      .join("\n")
    : "";
  const nav = [
    ...(options.home ? [`<a href="${escapeHtml(options.home)}">all runs</a>`] : []),
    ...(report.missing.length > 0 ? ['<a href="#missing">missing</a>'] : []),
    '<a href="#tables">tables</a>',
    '<a href="#figures">figures</a>',
    '<a href="#provenance">provenance</a>',
    '<a href="#files">files</a>',
  ].join("");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(report.title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style>`,
    scripts,
    "</head>",
    `<body${interactive ? "" : ' data-figures="done"'}>`,
    `<header><h1>${escapeHtml(report.title)}</h1><p class="lead">${
      escapeHtml(lead(report))
    }</p><nav>${nav}</nav></header>`,
    "<main>",
    missingSection(report),
    tablesSection(report),
    figuresSection(report, interactive),
    provenanceSection(report.provenance),
    filesSection(options.files),
    "</main>",
    ...(interactive
      ? [
        `<script type="application/json" id="figure-specs">${scriptJson(specs)}</script>`,
        `<script>${EMBED_SCRIPT}</script>`,
      ]
      : []),
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
