/**
 * Pass@k against k, one panel per eval set: the mean over seeds per policy as lines with
 * points, ± one standard error as error bars (absent for a single seed, where SE is 0), k on a
 * log₂ axis since the configured k values usually double.
 *
 * @example
 * ```ts
 * import { passAtKSpec } from "./spec_pass_at_k.ts";
 * const spec = passAtKSpec([
 *   { set: "tiny-aime24", series: "Base", k: 1, mean: 20, se: 0 },
 *   { set: "tiny-aime24", series: "Base", k: 4, mean: 45, se: 0 },
 * ], { series: ["Base"], metric: "Pass@k" });
 * "facet" in spec; // true
 * ```
 *
 * @module
 */

import {
  FACET_WIDTH,
  type FigureSpec,
  PANEL_HEIGHT,
  policyColor,
  roundValue,
  topLevel,
} from "./spec_common.ts";

/** One point: a policy's mean at one k on one set. */
export interface KPoint {
  /** Eval set. */
  set: string;
  /** Series label (policy label). */
  series: string;
  /** k. */
  k: number;
  /** Mean over seeds (percent). */
  mean: number;
  /** Standard error over seeds. */
  se: number;
}

/** Options for {@link passAtKSpec}. */
export interface PassAtKOptions {
  /** Series labels in legend order. */
  series: readonly string[];
  /** Metric name for titles (default "Pass@k"). */
  metric?: string;
  /** Eval sets in panel order (default the order of the points). */
  sets?: readonly string[];
}

/**
 * The Pass@k-against-k figure.
 *
 * @param points One per (set, policy, k).
 * @param options Series order, metric name, panel order.
 * @returns The Vega-Lite spec.
 */
export function passAtKSpec(points: readonly KPoint[], options: PassAtKOptions): FigureSpec {
  const metric = options.metric ?? "Pass@k";
  const values = points.map((p) => ({
    set: p.set,
    series: p.series,
    k: p.k,
    mean: roundValue(p.mean),
    lo: roundValue(p.mean - p.se),
    hi: roundValue(p.mean + p.se),
  }));
  const sets = options.sets ?? [...new Set(points.map((p) => p.set))];
  const ks = [...new Set(points.map((p) => p.k))].sort((a, b) => a - b);
  const x = {
    field: "k",
    type: "quantitative" as const,
    scale: { type: "log" as const, base: 2 },
    axis: { values: ks, format: "d", grid: false },
    title: "k",
  };
  const y = { field: "mean", type: "quantitative" as const, title: `${metric} (%)` };
  const color = policyColor("series", options.series);
  return {
    ...topLevel(`${metric} against k`, "per eval set; mean over seeds ± standard error"),
    data: { values },
    facet: { column: { field: "set", type: "nominal" as const, title: null, sort: [...sets] } },
    spec: {
      width: FACET_WIDTH,
      height: PANEL_HEIGHT,
      layer: [
        { mark: { type: "line" as const, strokeWidth: 1.5 }, encoding: { x, y, color } },
        {
          mark: { type: "point" as const, filled: true, size: 30 },
          encoding: {
            x,
            y,
            color,
            tooltip: [
              { field: "series", type: "nominal" as const },
              { field: "k", type: "quantitative" as const },
              { field: "mean", type: "quantitative" as const, format: ".2f" },
            ],
          },
        },
        {
          mark: { type: "rule" as const },
          encoding: {
            x,
            y: { field: "lo", type: "quantitative" as const, title: `${metric} (%)` },
            y2: { field: "hi" },
            color,
          },
        },
      ],
    },
  } as FigureSpec;
}
