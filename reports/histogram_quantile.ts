/**
 * A quantile read off a histogram of log-spaced bins: the value below which a share q of the
 * counted items lies, interpolated geometrically inside the bin where the cumulative share
 * reaches q (the bins are log-spaced, so within a bin items are taken as uniform in log x).
 *
 * Used for the low-entropy cut of the token-entropy figure: with SENT's bottom-80 % rule the cut
 * is the 0.8 quantile of the token entropies. The score stage keeps only the histogram, so the
 * cut is exact to within one bin.
 *
 * @example
 * ```ts
 * import { histogramQuantile } from "./histogram_quantile.ts";
 * histogramQuantile([{ from: 1, to: 10, count: 1 }, { from: 10, to: 100, count: 1 }], 0.5); // 10
 * histogramQuantile([{ from: 1, to: 100, count: 4 }], 0.5); // 10 (half-way in log)
 * ```
 *
 * @module
 */

import type { Bar } from "./spec_histograms.ts";

/**
 * The q-quantile of a log-binned histogram.
 *
 * @param bars Bins in ascending order, positive edges.
 * @param q Share in [0, 1].
 * @returns The interpolated value, or null when the bins hold nothing.
 */
export function histogramQuantile(bars: readonly Bar[], q: number): number | null {
  const total = bars.reduce((s, b) => s + b.count, 0);
  if (total <= 0) return null;
  const target = q * total;
  let below = 0;
  for (const bar of bars) {
    if (bar.count > 0 && below + bar.count >= target) {
      const frac = Math.min(Math.max((target - below) / bar.count, 0), 1);
      return bar.from * (bar.to / bar.from) ** frac;
    }
    below += bar.count;
  }
  return bars.at(-1)!.to;
}
