/**
 * The base policy's warm-up: next-token cross-entropy per logged SFT step (the `base` stage's
 * `metrics.jsonl`, one row every `base.warmup.logEvery` steps).
 *
 * @example
 * ```ts
 * import { warmupSpec } from "./spec_warmup.ts";
 * const spec = warmupSpec([{ step: 10, loss: 3.2 }, { step: 20, loss: 2.7 }]);
 * (spec as { mark: { type: string } }).mark.type; // "line"
 * ```
 *
 * @module
 */

import { type FigureSpec, PANEL_HEIGHT, PANEL_WIDTH, roundValue, topLevel } from "./spec_common.ts";

/** One logged warm-up step. */
export interface WarmupPoint {
  /** Optimizer step. */
  step: number;
  /** Mean cross-entropy (nats per token). */
  loss: number;
}

/**
 * The warm-up loss figure.
 *
 * @param points Logged steps, ascending.
 * @returns The Vega-Lite spec.
 */
export function warmupSpec(points: readonly WarmupPoint[]): FigureSpec {
  return {
    ...topLevel("Base warm-up loss", "SFT next-token cross-entropy on the training traces"),
    data: { values: points.map((p) => ({ step: p.step, loss: roundValue(p.loss) })) },
    width: PANEL_WIDTH,
    height: PANEL_HEIGHT,
    mark: { type: "line", point: points.length < 30, color: "#4c78a8" },
    encoding: {
      x: { field: "step", type: "quantitative", title: "SFT step" },
      y: {
        field: "loss",
        type: "quantitative",
        title: "loss (nats / token)",
        scale: { zero: false },
      },
    },
  } as FigureSpec;
}
