/**
 * Paper-form tables as Markdown and as HTML (the same cells; HTML escapes text and sets the
 * reference columns apart with a rule and a group header, Markdown tags them "(ref.)").
 *
 * A cell prints `mean ± SE` with the table's decimals (`mean` alone for a single seed, `—` when
 * empty); best is bold, second underlined (`<u>` in Markdown, which GitHub renders).
 *
 * @example
 * ```ts ignore
 * import { tableHtml, tableMarkdown } from "./table_text.ts";
 * await Deno.writeTextFile("avg_at_k.md", tableMarkdown(table));
 * ```
 *
 * @module
 */

import { escapeHtml } from "./html.ts";
import type { PaperTable, TableCell, TableRow } from "./tables.ts";

/** What a table says under itself. */
export function tableNote(table: PaperTable): string {
  const seeds = [
    ...new Set(
      [...table.rows, ...(table.average ? [table.average] : [])]
        .flatMap((r) => r.cells.map((c) => c.seeds)).filter((n) => n > 0),
    ),
  ].sort((a, b) => a - b);
  const over = seeds.length === 0
    ? "no values"
    : `mean ± standard error over ${seeds.join(" or ")} seed${seeds.at(-1) === 1 ? "" : "s"}` +
      (seeds.includes(1) ? " (no ± where one seed)" : "");
  const refs = table.columns.some((c) => c.group === "reference")
    ? "; columns marked (ref.) are the base sampled at a lower temperature, references that are not ranked"
    : "";
  return `${over}; best bold, second underlined among the base and the methods${refs}; ` +
    "Avg. = mean over the rows above, per seed, over the seeds that have every row.";
}

function number(value: number, digits: number): string {
  return value.toFixed(digits);
}

/** The cell's parts: the marked mean and the ± part. */
function cellParts(cell: TableCell, digits: number): { value: string; pm: string } | null {
  if (cell.mean === null) return null;
  return {
    value: number(cell.mean, digits),
    pm: cell.seeds > 1 ? ` ± ${number(cell.se, digits)}` : "",
  };
}

const hasK = (table: PaperTable) => table.metric !== "greedy";

function rowHead(table: PaperTable, row: TableRow, average: boolean): string[] {
  if (average) return hasK(table) ? ["**Avg.**", ""] : ["**Avg.**"];
  return hasK(table) ? [row.set, String(row.k)] : [row.set];
}

/**
 * The table as GitHub Markdown, followed by its note.
 *
 * @param table The table.
 * @returns Markdown text ending in a newline.
 */
export function tableMarkdown(table: PaperTable): string {
  const head = [
    "bench",
    ...(hasK(table) ? ["k"] : []),
    ...table.columns.map((c) => (c.group === "reference" ? `${c.label} (ref.)` : c.label)),
  ];
  const mdCell = (cell: TableCell) => {
    const parts = cellParts(cell, table.digits);
    if (parts === null) return "—";
    const value = cell.mark === "best"
      ? `**${parts.value}**`
      : cell.mark === "second"
      ? `<u>${parts.value}</u>`
      : parts.value;
    return value + parts.pm;
  };
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  const lines = [
    `**${table.title}**`,
    "",
    line(head),
    line(head.map(() => "---")),
    ...table.rows.map((row) => line([...rowHead(table, row, false), ...row.cells.map(mdCell)])),
    ...(table.average
      ? [line([...rowHead(table, table.average, true), ...table.average.cells.map(mdCell)])]
      : []),
    "",
    tableNote(table),
  ];
  return lines.join("\n") + "\n";
}

/**
 * The table as an HTML `<table>` (with a caption and the note as a footer paragraph).
 *
 * @param table The table.
 * @returns HTML fragment.
 */
export function tableHtml(table: PaperTable): string {
  const main = table.columns.filter((c) => c.group === "main").length;
  const refs = table.columns.length - main;
  const lead = hasK(table) ? 2 : 1;
  const groupRow = refs > 0
    ? `<tr><th colspan="${lead}"></th><th colspan="${main}">base and methods</th>` +
      `<th colspan="${refs}" class="ref ref-start">base, lower temperature (reference)</th></tr>`
    : "";
  // Reference cells are shaded; the first reference column also carries the dividing rule.
  const refClass = (i: number) =>
    table.columns[i]?.group !== "reference"
      ? ""
      : table.columns[i - 1]?.group === "reference"
      ? "ref"
      : "ref ref-start";
  const th = (text: string, cls: string) =>
    `<th${cls ? ` class="${cls}"` : ""}>${escapeHtml(text)}</th>`;
  const head = `<tr>${th("bench", "")}${hasK(table) ? th("k", "") : ""}${
    table.columns.map((c, i) => th(c.label, refClass(i))).join("")
  }</tr>`;
  const td = (cell: TableCell, ref: string) => {
    const parts = cellParts(cell, table.digits);
    const cls = [ref, cell.mark ?? ""].filter(Boolean).join(" ");
    const attr = cls ? ` class="${cls}"` : "";
    if (parts === null) return `<td${attr}>—</td>`;
    const value = cell.mark === "best"
      ? `<b>${parts.value}</b>`
      : cell.mark === "second"
      ? `<u>${parts.value}</u>`
      : parts.value;
    return `<td${attr}>${value}${
      parts.pm ? `<span class="pm">${escapeHtml(parts.pm)}</span>` : ""
    }</td>`;
  };
  const tr = (row: TableRow, average: boolean) =>
    `<tr${average ? ' class="avg"' : ""}>${
      rowHead(table, row, average).map((h) =>
        `<th scope="row">${escapeHtml(h.replaceAll("**", ""))}</th>`
      ).join("")
    }${row.cells.map((cell, i) => td(cell, refClass(i))).join("")}</tr>`;
  return [
    `<table class="paper" id="table-${table.id}">`,
    `<caption>${escapeHtml(table.title)}</caption>`,
    `<thead>${groupRow}${head}</thead>`,
    "<tbody>",
    ...table.rows.map((row) => tr(row, false)),
    ...(table.average ? [tr(table.average, true)] : []),
    "</tbody>",
    "</table>",
    `<p class="note">${escapeHtml(tableNote(table))}</p>`,
  ].join("\n");
}
