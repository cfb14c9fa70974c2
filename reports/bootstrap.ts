/**
 * A seeded percentile bootstrap of a mean: the interval a reader uses to see whether a gap
 * between two methods is larger than the noise of the problems drawn.
 *
 * Given n values x_1 … x_n (e.g. one paired difference per problem), each of B resamples draws
 * n indices uniformly with replacement from the seeded xoshiro128** stream and takes the mean
 * of the drawn values. The interval is the (1 − level)/2 and (1 + level)/2 quantiles of the B
 * means, with linear interpolation between order statistics (quantile at p: h = (B − 1)·p,
 * m_⌊h⌋ + (h − ⌊h⌋)·(m_⌊h⌋+1 − m_⌊h⌋), the common "type 7" rule). Same values, seed and B ⇒ same
 * interval, bit for bit.
 *
 * @example
 * ```ts
 * import { bootstrapMean } from "./bootstrap.ts";
 * const ci = bootstrapMean([1, 2, 3, 4], { seed: "example", resamples: 1000 });
 * ci.estimate; // 2.5
 * ci.lo < 2.5 && 2.5 < ci.hi; // true
 * bootstrapMean([3, 3, 3], { seed: 1 }); // { estimate: 3, lo: 3, hi: 3, … }
 * ```
 *
 * @module
 */

import { Rng, type Seed } from "../pipeline/rng.ts";

/** Default number of resamples. */
export const DEFAULT_RESAMPLES = 2000;

/** Default coverage of the interval. */
export const DEFAULT_LEVEL = 0.95;

/** Options for {@link bootstrapMean}. */
export interface BootstrapOptions {
  /** Seed of the resampling stream (required: there is no unseeded bootstrap). */
  seed: Seed;
  /** Resamples B (default {@link DEFAULT_RESAMPLES}). */
  resamples?: number;
  /** Coverage in (0, 1) (default {@link DEFAULT_LEVEL}). */
  level?: number;
}

/** A mean with its bootstrap interval. */
export interface Interval {
  /** Mean of the values. */
  estimate: number;
  /** Lower end. */
  lo: number;
  /** Upper end. */
  hi: number;
  /** Resamples used. */
  resamples: number;
  /** Coverage. */
  level: number;
}

/**
 * The value at quantile p of ascending numbers, interpolating linearly between order statistics.
 *
 * @param sorted Ascending values (at least one).
 * @param p Quantile in [0, 1].
 * @returns The quantile.
 */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const h = (sorted.length - 1) * p;
  const below = Math.floor(h);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (h - below) * (sorted[above] - sorted[below]);
}

/**
 * Mean of the values with a seeded percentile-bootstrap interval.
 *
 * @param values At least one finite number.
 * @param options Seed, resamples, coverage.
 * @returns Estimate and interval.
 * @throws RangeError for no values, a non-finite value, B < 1 or a level outside (0, 1).
 */
export function bootstrapMean(values: readonly number[], options: BootstrapOptions): Interval {
  const n = values.length;
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  const level = options.level ?? DEFAULT_LEVEL;
  if (n === 0) throw new RangeError("bootstrapMean: no values; expected at least one");
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new RangeError(`bootstrapMean: value ${bad} is ${values[bad]}; expected a finite number`);
  }
  if (!Number.isInteger(resamples) || resamples < 1) {
    throw new RangeError(`bootstrapMean: resamples is ${resamples}; expected an integer ≥ 1`);
  }
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`bootstrapMean: level is ${level}; expected a number in (0, 1)`);
  }
  const rng = Rng.fromSeed(options.seed);
  const means = new Float64Array(resamples);
  for (let b = 0; b < resamples; b++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[rng.int(n)];
    means[b] = sum / n;
  }
  means.sort();
  const tail = (1 - level) / 2;
  return {
    estimate: values.reduce((s, v) => s + v, 0) / n,
    lo: quantileSorted(means, tail),
    hi: quantileSorted(means, 1 - tail),
    resamples,
    level,
  };
}
