/**
 * The paired-comparison table as Markdown and HTML: Δ Avg@k in percentage points with its
 * bootstrap interval and a verdict (`higher` / `lower` when the interval excludes 0, else
 * `within noise`).
 *
 * @example
 * ```ts
 * import { verdict } from "./paired_text.ts";
 * verdict({ lo: 0.5, hi: 3 }); // "higher"
 * verdict({ lo: -1, hi: 2 }); // "within noise"
 * ```
 *
 * @module
 */

import { escapeHtml } from "./html.ts";
import type { PairedRow } from "./paired.ts";
import { policyLabel } from "./policies.ts";

/**
 * Whether an interval says the method is above or below its reference.
 *
 * @param row The interval's ends.
 * @returns `higher` (lo > 0), `lower` (hi < 0) or `within noise`.
 */
export function verdict(row: Pick<PairedRow, "lo" | "hi">): "higher" | "lower" | "within noise" {
  return row.lo > 0 ? "higher" : row.hi < 0 ? "lower" : "within noise";
}

const signed = (x: number) => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`;

/** Header and cells of each row, as text. */
function cells(rows: readonly PairedRow[]): { head: string[]; body: string[][] } {
  const k = rows[0]?.k ?? 0;
  const level = 95;
  return {
    head: [
      "bench",
      "method",
      "vs",
      `Δ Avg@${k} (pp)`,
      `${level} % interval`,
      "problems",
      "seeds",
      "verdict",
    ],
    body: rows.map((r) => [
      r.set,
      policyLabel(r.policy),
      policyLabel(r.reference),
      signed(r.delta),
      `[${signed(r.lo)}, ${signed(r.hi)}]`,
      String(r.problems),
      String(r.seeds),
      verdict(r),
    ]),
  };
}

/** What the paired table says under itself. */
export const PAIRED_NOTE =
  "Per problem, the difference in Avg@k between the method and the reference " +
  "(same seeds, common random numbers), averaged over the seeds both have; mean over problems with " +
  "a seeded percentile-bootstrap 95 % interval (2,000 resamples of problems). " +
  '"higher" / "lower": the interval excludes 0.';

/**
 * The paired table as Markdown.
 *
 * @param rows The comparisons.
 * @returns Markdown text ending in a newline (a sentence when there are none).
 */
export function pairedMarkdown(rows: readonly PairedRow[]): string {
  if (rows.length === 0) {
    return "**Paired comparisons**\n\nNo method has a reference to compare with.\n";
  }
  const { head, body } = cells(rows);
  const line = (c: readonly string[]) => `| ${c.join(" | ")} |`;
  return [
    "**Paired comparisons**",
    "",
    line(head),
    line(head.map(() => "---")),
    ...body.map(line),
    "",
    PAIRED_NOTE,
  ].join("\n") + "\n";
}

/**
 * The paired table as HTML.
 *
 * @param rows The comparisons.
 * @returns HTML fragment.
 */
export function pairedHtml(rows: readonly PairedRow[]): string {
  if (rows.length === 0) return '<p class="note">No method has a reference to compare with.</p>';
  const { head, body } = cells(rows);
  return [
    '<table class="paired" id="table-paired">',
    "<caption>Paired comparisons</caption>",
    `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>`,
    "<tbody>",
    ...body.map((row) =>
      `<tr class="${row[7].replace(" ", "-")}">${
        row.map((c) => `<td>${escapeHtml(c)}</td>`).join("")
      }</tr>`
    ),
    "</tbody>",
    "</table>",
    `<p class="note">${escapeHtml(PAIRED_NOTE)}</p>`,
  ].join("\n");
}
