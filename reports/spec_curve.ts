/**
 * Learning curves: one training metric per rollout step and method, the mean across seeds as a
 * line and mean ± standard error as a band (bands computed in the pipeline by
 * `curveBands`, not by Vega). With several metrics the figure has one row of panels per metric,
 * each with its own y scale (e.g. the selected-token fractions).
 *
 * @example
 * ```ts
 * import { curveSpec } from "./spec_curve.ts";
 * const spec = curveSpec([
 *   { series: "GRPO", metric: "entropy", step: 0, mean: 3.1, lo: 3.0, hi: 3.2, n: 2 },
 *   { series: "GRPO", metric: "entropy", step: 1, mean: 2.9, lo: 2.8, hi: 3.0, n: 2 },
 * ], { title: "Entropy", subtitle: "mean token entropy", yTitle: "nats", series: ["GRPO"] });
 * spec.$schema; // "https://vega.github.io/schema/vega-lite/v6.json"
 * ```
 *
 * @module
 */

import {
  type FigureSpec,
  PANEL_HEIGHT,
  PANEL_WIDTH,
  policyColor,
  roundValue,
  topLevel,
} from "./spec_common.ts";

/** One point of a curve: a series (method label), a metric, a step, the band. */
export interface CurvePoint {
  /** Series label (the method's table label). */
  series: string;
  /** Metric name (the panel, when there are several). */
  metric: string;
  /** Rollout step. */
  step: number;
  /** Mean across seeds. */
  mean: number;
  /** mean − SE. */
  lo: number;
  /** mean + SE. */
  hi: number;
  /** Seeds at this step. */
  n: number;
}

/** Options for {@link curveSpec}. */
export interface CurveOptions {
  /** Figure title. */
  title: string;
  /** One line under the title. */
  subtitle: string;
  /** y-axis title (single metric), or the title of each panel row's axis. */
  yTitle: string;
  /** Series labels in legend order. */
  series: readonly string[];
  /** Panel titles per metric when there are several (default the metric name). */
  metricTitles?: Readonly<Record<string, string>>;
}

/** Fill opacity of the bands: light enough to see overlapping methods. */
const BAND_OPACITY = 0.18;

/**
 * A learning-curve figure.
 *
 * @param points Band points (any order).
 * @param options Titles and series order.
 * @returns The Vega-Lite spec.
 */
export function curveSpec(points: readonly CurvePoint[], options: CurveOptions): FigureSpec {
  const metrics = [...new Set(points.map((p) => p.metric))];
  const values = points.map((p) => ({
    series: p.series,
    metric: options.metricTitles?.[p.metric] ?? p.metric,
    step: p.step,
    mean: roundValue(p.mean),
    lo: roundValue(p.lo),
    hi: roundValue(p.hi),
    n: p.n,
  }));
  const x = {
    field: "step",
    type: "quantitative" as const,
    title: "rollout step",
    axis: { tickMinStep: 1, format: "d" },
  };
  const color = policyColor("series", options.series);
  const layer = [
    {
      // fillOpacity, not opacity: the legend takes a layer's opacity for its swatches.
      mark: { type: "area" as const, fillOpacity: BAND_OPACITY },
      encoding: {
        x,
        y: { field: "lo", type: "quantitative" as const, title: options.yTitle },
        y2: { field: "hi" },
        color,
      },
    },
    {
      mark: { type: "line" as const, strokeWidth: 1.5 },
      encoding: {
        x,
        y: { field: "mean", type: "quantitative" as const, title: options.yTitle },
        color,
        tooltip: [
          { field: "series", type: "nominal" as const },
          { field: "step", type: "quantitative" as const },
          { field: "mean", type: "quantitative" as const, format: ".4g" },
          { field: "n", type: "quantitative" as const, title: "seeds" },
        ],
      },
    },
  ];
  const head = topLevel(options.title, options.subtitle);
  if (metrics.length <= 1) {
    return {
      ...head,
      data: { values },
      width: PANEL_WIDTH,
      height: PANEL_HEIGHT,
      layer,
    } as FigureSpec;
  }
  return {
    ...head,
    data: { values },
    facet: {
      row: {
        field: "metric",
        type: "nominal" as const,
        title: null,
        sort: metrics.map((m) => options.metricTitles?.[m] ?? m),
      },
    },
    resolve: { scale: { y: "independent" as const } },
    spec: { width: PANEL_WIDTH, height: Math.round(PANEL_HEIGHT * 0.6), layer },
  } as FigureSpec;
}
