/**
 * The SENT curriculum split: order training questions from low to high semantic entropy and cut
 * them into S buckets D_1 … D_S, trained one after another (stage 1 = lowest SE).
 *
 * The SENT paper / verl reference implementation train two stages but do not ship the rule that
 * made them; two rules are offered:
 *
 * - `quantiles`: S equal-count buckets of the sorted list (S = 2 is a median split). Robust to the
 *   entropy unit and to M, the samples per question. Bucket b holds sorted positions
 *   [⌊b·N/S⌋, ⌊(b+1)·N/S⌋): sizes differ by at most one, and for S = 2 with N odd the high
 *   bucket holds the extra question.
 * - `thresholds`: ascending cut values τ_1 < … < τ_{S−1}; bucket i holds SE in [τ_{i−1}, τ_i)
 *   with τ_0 = −∞ and τ_S = +∞ (a question exactly at a threshold goes to the higher bucket).
 *   `[2]` reproduces the "SE < 2 vs SE ≥ 2" reading of the reference's file names.
 *
 * Ties: many questions share an SE (every question whose M answers agree has SE = 0), so a
 * quantile cut usually falls inside a run of equal values. Which of the tied questions land on
 * each side is decided by a seeded shuffle: ids are put in code-unit order, shuffled with the
 * seed, then stably sorted by SE. The result depends only on the set of items and the seed, not
 * on the input order. Within a bucket, ids stay in that order (SE ascending); the trainer
 * shuffles each stage's data itself.
 *
 * @example
 * ```ts
 * import { curriculumSplit } from "./curriculum_split.ts";
 * const items = [{ id: "a", se: 0 }, { id: "b", se: 1.3 }, { id: "c", se: 0.6 }, { id: "d", se: 2.1 }];
 * curriculumSplit(items, { split: "quantiles", seed: 1 }).buckets; // [["a", "c"], ["b", "d"]]
 * curriculumSplit(items, { split: "thresholds", thresholds: [2], seed: 1 }).buckets;
 * // [["a", "c", "b"], ["d"]]
 * ```
 *
 * @module
 */

import { Rng, type Seed } from "../../pipeline/rng.ts";

/** One training question and its semantic entropy. */
export interface ScoredItem {
  /** Question id (unique). */
  id: string;
  /** Semantic entropy of the question (any unit, as long as thresholds use the same). */
  se: number;
}

/** How to cut the sorted list into buckets. */
export type SplitRule = "quantiles" | "thresholds";

/** Options for {@link curriculumSplit}. */
export interface CurriculumSplitOptions {
  /**
   * Number of buckets S ≥ 1. Default 2 for `quantiles`; for `thresholds` it defaults to
   * `thresholds.length + 1` and, if given, must equal it.
   */
  buckets?: number;
  /** `quantiles` (equal counts; the recommended default) or `thresholds` (fixed SE cut values). */
  split: SplitRule;
  /** Strictly ascending finite SE cut values; required by, and only allowed with, `thresholds`. */
  thresholds?: readonly number[];
  /** Seed of the tie-breaking shuffle (same seed and items ⇒ same buckets). */
  seed: Seed;
}

/** Summary of one bucket (SE statistics are null for an empty bucket). */
export interface BucketStats {
  /** Questions in the bucket. */
  count: number;
  /** Smallest SE in the bucket. */
  minSe: number | null;
  /** Largest SE in the bucket. */
  maxSe: number | null;
  /** Mean SE of the bucket. */
  meanSe: number | null;
}

/** The buckets, their statistics and the cut points between them. */
export interface CurriculumSplitResult {
  /** Ids per bucket, bucket 0 = lowest SE; within a bucket SE ascending (ties seeded). [S][·] */
  buckets: string[][];
  /** Statistics per bucket. [S] */
  stats: BucketStats[];
  /**
   * SE cut points between consecutive buckets. [S − 1] For `thresholds`: the thresholds. For
   * `quantiles`: the SE of the first question of each bucket after the first (questions tied at
   * that value may sit on either side).
   */
  cuts: number[];
}

/** Bucket start positions [S + 1] in the sorted list, one rule per entry. */
type Bounds = (sortedSe: readonly number[], buckets: number, thresholds: readonly number[]) => {
  starts: number[];
  cuts: number[];
};

const SPLITS: Record<SplitRule, Bounds> = {
  // Equal counts: bucket b starts at ⌊b·N/S⌋.
  quantiles: (se, buckets) => {
    const starts = Array.from(
      { length: buckets + 1 },
      (_, b) => Math.floor((b * se.length) / buckets),
    );
    return { starts, cuts: starts.slice(1, -1).map((at) => se[at]) };
  },
  // Bucket i starts at the first SE ≥ τ_i (the list is sorted ascending).
  thresholds: (se, _buckets, thresholds) => {
    const firstAtLeast = (t: number) => {
      const at = se.findIndex((v) => v >= t);
      return at < 0 ? se.length : at;
    };
    return { starts: [0, ...thresholds.map(firstAtLeast), se.length], cuts: [...thresholds] };
  },
};

/** Check the options and return the bucket count and thresholds in use. */
function resolveOptions(
  options: CurriculumSplitOptions,
  itemCount: number,
): { buckets: number; thresholds: readonly number[] } {
  const { split, thresholds } = options;
  if (!(split in SPLITS)) {
    throw new RangeError(
      `curriculumSplit: split is "${split}"; expected one of ${Object.keys(SPLITS).join(", ")}`,
    );
  }
  if (split === "quantiles") {
    if (thresholds !== undefined) {
      throw new RangeError(
        `curriculumSplit: thresholds [${thresholds}] given with split "quantiles"; ` +
          `expected split "thresholds" or no thresholds`,
      );
    }
    const buckets = options.buckets ?? 2;
    if (!Number.isInteger(buckets) || buckets < 1) {
      throw new RangeError(`curriculumSplit: buckets is ${buckets}; expected an integer ≥ 1`);
    }
    if (itemCount < buckets) {
      throw new RangeError(
        `curriculumSplit: ${itemCount} items cannot fill ${buckets} quantile buckets; ` +
          `expected at least ${buckets} items`,
      );
    }
    return { buckets, thresholds: [] };
  }
  if (thresholds === undefined) {
    throw new RangeError('curriculumSplit: split "thresholds" needs a thresholds list');
  }
  thresholds.forEach((t, i) => {
    if (!Number.isFinite(t)) {
      throw new RangeError(`curriculumSplit: threshold ${i} is ${t}; expected a finite number`);
    }
    if (i > 0 && !(t > thresholds[i - 1])) {
      throw new RangeError(
        `curriculumSplit: thresholds [${thresholds}] are not strictly ascending at ${i} (${t})`,
      );
    }
  });
  const buckets = options.buckets ?? thresholds.length + 1;
  if (buckets !== thresholds.length + 1) {
    throw new RangeError(
      `curriculumSplit: buckets is ${buckets} with ${thresholds.length} thresholds; ` +
        `expected buckets = thresholds.length + 1 = ${thresholds.length + 1}`,
    );
  }
  return { buckets, thresholds };
}

function bucketStats(se: readonly number[]): BucketStats {
  if (se.length === 0) return { count: 0, minSe: null, maxSe: null, meanSe: null };
  return {
    count: se.length,
    minSe: se[0],
    maxSe: se[se.length - 1],
    meanSe: se.reduce((s, v) => s + v, 0) / se.length,
  };
}

/**
 * Split scored questions into curriculum buckets, SE low → high, ties broken by a seeded shuffle.
 *
 * @param items Question ids with their semantic entropy; ids must be unique.
 * @param options Split rule, bucket count, thresholds and tie-breaking seed.
 * @returns Ids per bucket (bucket 0 = lowest SE), per-bucket statistics and the cut points.
 * @throws RangeError naming a duplicate id, a non-finite SE, an unknown rule, a bad bucket count,
 *   thresholds that are missing, unsorted or inconsistent with `buckets`, or too few items.
 * @example
 * ```ts
 * import { curriculumSplit } from "./curriculum_split.ts";
 * const items = [0, 0, 0, 0, 1.5, 2].map((se, i) => ({ id: `q${i}`, se }));
 * const { buckets, cuts } = curriculumSplit(items, { split: "quantiles", seed: "run-1" });
 * buckets[0].length; // 3 (three of the four SE = 0 questions, chosen by the seed)
 * cuts; // [0]
 * ```
 */
export function curriculumSplit(
  items: readonly ScoredItem[],
  options: CurriculumSplitOptions,
): CurriculumSplitResult {
  const seen = new Set<string>();
  items.forEach(({ id, se }, i) => {
    if (seen.has(id)) throw new RangeError(`curriculumSplit: id "${id}" appears twice`);
    seen.add(id);
    if (!Number.isFinite(se)) {
      throw new RangeError(`curriculumSplit: item ${i} ("${id}") has se ${se}; expected finite`);
    }
  });
  const { buckets, thresholds } = resolveOptions(options, items.length);

  // Canonical order (ids by code unit), seeded shuffle, then a stable sort by SE.
  const order = [...items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  Rng.fromSeed(options.seed).fork("curriculum-ties").shuffle(order);
  order.sort((a, b) => a.se - b.se);

  const sortedSe = order.map((item) => item.se);
  const { starts, cuts } = SPLITS[options.split](sortedSe, buckets, thresholds);
  const slices = Array.from({ length: buckets }, (_, b) => [starts[b], starts[b + 1]] as const);
  return {
    buckets: slices.map(([lo, hi]) => order.slice(lo, hi).map((item) => item.id)),
    stats: slices.map(([lo, hi]) => bucketStats(sortedSe.slice(lo, hi))),
    cuts,
  };
}
