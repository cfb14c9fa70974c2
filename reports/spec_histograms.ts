/**
 * The two entropy distributions of the training set, as binned bars with vertical cut lines:
 *
 * - {@link seHistogramSpec}: semantic entropy of the training problems under the base policy
 *   (nats), with the curriculum's cut points between buckets;
 * - {@link tokenEntropySpec}: entropy of every sampled response token, log-spaced bins on a log
 *   x axis and counts on a log y axis (empty bins left out), with the low-entropy cut: the
 *   entropy below which the given share of tokens lies (SENT's low-entropy set is the bottom
 *   80 %).
 *
 * Both take bins already counted by the `score` stage; nothing is re-binned here.
 *
 * @example
 * ```ts
 * import { seHistogramSpec } from "./spec_histograms.ts";
 * const spec = seHistogramSpec([{ from: 0, to: 0.1, count: 12 }, { from: 0.6, to: 0.7, count: 4 }], [0.6]);
 * (spec as { layer: unknown[] }).layer.length; // 2 (bars, cut lines)
 * ```
 *
 * @module
 */

import type { SeBin } from "./inputs.ts";
import { type FigureSpec, PANEL_HEIGHT, PANEL_WIDTH, roundValue, topLevel } from "./spec_common.ts";

/** Colour of cut lines. */
const CUT_COLOR = "#c0392b";

/** One bar of a histogram: [from, to) and a count. */
export interface Bar {
  /** Lower edge. */
  from: number;
  /** Upper edge. */
  to: number;
  /** Count. */
  count: number;
}

/** A vertical line with a label. */
function cutLayers(cuts: readonly { x: number; label: string }[], xTitle: string) {
  const values = cuts.map((c) => ({ x: roundValue(c.x), label: c.label }));
  const x = { field: "x", type: "quantitative" as const, title: xTitle };
  return [
    {
      data: { values },
      mark: { type: "rule" as const, color: CUT_COLOR, strokeDash: [4, 3], strokeWidth: 1.5 },
      encoding: { x },
    },
    {
      data: { values },
      mark: {
        type: "text" as const,
        color: CUT_COLOR,
        align: "left" as const,
        dx: 3,
        dy: 4,
        baseline: "top" as const,
        fontSize: 10,
      },
      encoding: {
        x,
        y: { value: 0 },
        text: { field: "label", type: "nominal" as const },
      },
    },
  ];
}

/**
 * The semantic-entropy histogram with the curriculum cut points.
 *
 * @param bins SE bins of the score stage (nats).
 * @param cuts Cut points between curriculum buckets (may be empty).
 * @returns The Vega-Lite spec.
 */
export function seHistogramSpec(bins: readonly SeBin[], cuts: readonly number[]): FigureSpec {
  const values = bins.map((b) => ({
    from: roundValue(b.from),
    to: roundValue(b.to),
    count: b.count,
  }));
  const xTitle = "semantic entropy (nats)";
  const x = { field: "from", type: "quantitative" as const, title: xTitle };
  return {
    ...topLevel(
      "Semantic entropy of the training problems",
      cuts.length > 0
        ? `base policy's answers clustered by the grader; dashed: curriculum cut${
          cuts.length > 1 ? "s" : ""
        }`
        : "base policy's answers clustered by the grader",
    ),
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: "rect" as const, color: "#4c78a8", stroke: "white", strokeWidth: 0.5 },
        encoding: {
          x,
          x2: { field: "to" },
          y: { field: "count", type: "quantitative" as const, title: "problems" },
          y2: { datum: 0 },
        },
      },
      ...(cuts.length > 0
        ? cutLayers(cuts.map((c, i) => ({ x: c, label: `cut ${i + 1}: ${c.toFixed(2)}` })), xTitle)
        : []),
    ],
  } as FigureSpec;
}

/**
 * Bars of a token-entropy histogram: bin i spans (edges[i−1], edges[i]]; bin 0 starts one
 * spacing below edges[0] and the open last bin ends one spacing above the last edge (log
 * spacing taken from the last two edges), so every bar has a width on a log axis.
 *
 * @param edges Upper edges, ascending, log-spaced. [E]
 * @param counts Token counts. [E + 1]
 * @returns Bars with a positive count.
 */
export function tokenEntropyBars(edges: readonly number[], counts: readonly number[]): Bar[] {
  const ratio = edges.length >= 2 ? edges.at(-1)! / edges.at(-2)! : 10;
  return counts.flatMap((count, i) => {
    const from = i === 0 ? edges[0] / ratio : edges[i - 1];
    const to = i < edges.length ? edges[i] : edges.at(-1)! * ratio;
    return count > 0 && to > from ? [{ from, to, count }] : [];
  });
}

/**
 * The token-entropy distribution with the low-entropy cut.
 *
 * @param bars Bars from {@link tokenEntropyBars}.
 * @param cut The low-entropy cut (nats) and the share of tokens below it, or null.
 * @returns The Vega-Lite spec.
 */
export function tokenEntropySpec(
  bars: readonly Bar[],
  cut: { at: number; share: number } | null,
): FigureSpec {
  const values = bars.map((b) => ({
    from: roundValue(b.from),
    to: roundValue(b.to),
    count: b.count,
  }));
  const log = { type: "log" as const };
  const xTitle = "token entropy (nats, log scale)";
  return {
    ...topLevel(
      "Token entropy of sampled responses",
      cut
        ? `every response token of the scoring samples; dashed: the low-entropy cut (${
          Math.round(cut.share * 100)
        } % of tokens below)`
        : "every response token of the scoring samples",
    ),
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    layer: [
      {
        data: { values },
        mark: { type: "rect" as const, color: "#72b7b2", stroke: "white", strokeWidth: 0.5 },
        encoding: {
          x: { field: "from", type: "quantitative" as const, scale: log, title: xTitle },
          x2: { field: "to" },
          y: {
            field: "count",
            type: "quantitative" as const,
            scale: log,
            title: "tokens (log scale)",
          },
          // A log axis has no zero: bars stand on the bottom of the plot.
          y2: { value: PANEL_HEIGHT },
        },
      },
      ...(cut ? cutLayers([{ x: cut.at, label: `${cut.at.toPrecision(3)} nats` }], xTitle) : []),
    ],
  } as FigureSpec;
}
