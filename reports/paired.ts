/**
 * Paired comparisons beyond the paper's tables: for each method against GRPO and against the
 * base, the per-problem difference in Avg@k with a seeded bootstrap 95 % interval.
 *
 * For one eval set, method m, reference r and k: problem p's Avg@k under seed s is
 * a(p, s) = 100 · (correct among the first k samples) / k. Both policies were sampled on common
 * random numbers (the same streams per seed and problem), so the difference is paired per
 * (problem, seed): d_p = mean over the seeds both have of a_m(p, s) − a_r(p, s) — seeds pooled
 * into one value per problem. The estimate is the mean of d_p over the problems both have; the
 * interval resamples problems ({@link bootstrapMean}), each resample keeping a problem's seeds
 * together. An interval that excludes 0 says the gap is larger than the problem-sampling noise.
 *
 * Each comparison has its own stream, `report/bootstrap/<set>/<method>/<reference>/<k>`, so
 * adding a method or a set does not change the other intervals.
 *
 * @example
 * ```ts ignore
 * import { pairedComparisons } from "./paired.ts";
 * const rows = pairedComparisons(results, { methods: ["grpo", "sent"] });
 * rows[0]; // { set: "tiny-aime24", policy: "sent", reference: "grpo", k: 4, delta: 3.1, lo: -1.2, hi: 7.4, … }
 * ```
 *
 * @module
 */

import type { PolicyResult, Results } from "../stages/_rl/results.ts";
import { bootstrapMean, DEFAULT_LEVEL, DEFAULT_RESAMPLES } from "./bootstrap.ts";
import { isBasePolicy } from "./policies.ts";

/** The references every method is compared with, in table order. */
export const REFERENCES = ["grpo", "base"] as const;

/** Base seed of the comparison streams. */
export const BOOTSTRAP_SEED = "report/bootstrap";

/** One paired comparison. */
export interface PairedRow {
  /** Eval set. */
  set: string;
  /** The method. */
  policy: string;
  /** What it is compared with (`grpo` or `base`). */
  reference: string;
  /** k of Avg@k. */
  k: number;
  /** Mean paired difference, percentage points (method − reference). */
  delta: number;
  /** Lower end of the interval. */
  lo: number;
  /** Upper end. */
  hi: number;
  /** Problems paired. */
  problems: number;
  /** Seeds pooled (those both policies have). */
  seeds: number;
}

/** Options for {@link pairedComparisons}. */
export interface PairedOptions {
  /** `train.methods`, for the order of rows. */
  methods: readonly string[];
  /** k of Avg@k (default the largest of `results.ks`). */
  k?: number;
  /** Bootstrap resamples (default 2000). */
  resamples?: number;
  /** Coverage (default 0.95). */
  level?: number;
}

/** a(p, s) per problem id, per seed: Avg@k of one problem from its first k samples. */
function problemAverages(entry: PolicyResult, k: number): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [seed, result] of Object.entries(entry.seeds)) {
    if (result.n < k) continue;
    for (const problem of result.problems) {
      const first = problem.correct.slice(0, k).filter(Boolean).length;
      const seeds = out.get(problem.id) ?? new Map<string, number>();
      seeds.set(seed, (100 * first) / k);
      out.set(problem.id, seeds);
    }
  }
  return out;
}

/**
 * The per-problem paired differences d_p of a method against a reference.
 *
 * @param method The method's results on one set.
 * @param reference The reference's results on the same set.
 * @param k k of Avg@k.
 * @returns d_p per problem both have (in the method's problem order) and the seeds pooled.
 */
export function pairedDifferences(
  method: PolicyResult,
  reference: PolicyResult,
  k: number,
): { differences: number[]; seeds: number } {
  const a = problemAverages(method, k);
  const b = problemAverages(reference, k);
  const differences: number[] = [];
  const pooled = new Set<string>();
  for (const [id, seedsA] of a) {
    const seedsB = b.get(id);
    if (seedsB === undefined) continue;
    const common = [...seedsA.keys()].filter((s) => seedsB.has(s));
    if (common.length === 0) continue;
    common.forEach((s) => pooled.add(s));
    differences.push(
      common.reduce((sum, s) => sum + seedsA.get(s)! - seedsB.get(s)!, 0) / common.length,
    );
  }
  return { differences, seeds: pooled.size };
}

/**
 * Every method against each reference on every set, for one k.
 *
 * @param results The parsed results.
 * @param options Method order, k, resamples, coverage.
 * @returns One row per (set, method, reference) where both have paired problems; a missing
 *   reference gives no row (the page lists what is missing).
 */
export function pairedComparisons(results: Results, options: PairedOptions): PairedRow[] {
  const k = options.k ?? Math.max(...results.ks);
  const rows: PairedRow[] = [];
  for (const [set, policies] of Object.entries(results.sets)) {
    const present = Object.keys(policies).filter((p) => !isBasePolicy(p));
    const methods = [
      ...options.methods.filter((m) => present.includes(m)),
      ...present.filter((p) => !options.methods.includes(p)),
    ];
    for (const policy of methods) {
      for (const reference of REFERENCES) {
        if (policy === reference || policies[reference] === undefined) continue;
        const { differences, seeds } = pairedDifferences(policies[policy], policies[reference], k);
        if (differences.length === 0) continue;
        const interval = bootstrapMean(differences, {
          seed: `${BOOTSTRAP_SEED}/${set}/${policy}/${reference}/${k}`,
          resamples: options.resamples ?? DEFAULT_RESAMPLES,
          level: options.level ?? DEFAULT_LEVEL,
        });
        rows.push({
          set,
          policy,
          reference,
          k,
          delta: interval.estimate,
          lo: interval.lo,
          hi: interval.hi,
          problems: differences.length,
          seeds,
        });
      }
    }
  }
  return rows;
}
