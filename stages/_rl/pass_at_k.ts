/**
 * Evaluation metrics over n sampled answers per problem: the unbiased pass@k estimator (Chen et
 * al. 2021, "Evaluating Large Language Models Trained on Code") and Avg@k, as the SENT paper's
 * OpenCompass evaluation reports them.
 *
 * For one problem with n samples of which c are correct, pass@k is the probability that a random
 * subset of k of the n samples holds at least one correct one:
 *
 * ```
 * pass@k = 1 − C(n − c, k) / C(n, k)
 *        = 1 − Π_{j = n−c+1}^{n} (1 − k/j)       (product form: no huge binomials, stable)
 *        = 1                                     when n − c < k (every k-subset hits a correct one)
 * ```
 *
 * With n = k it is "at least one of the k samples is correct". Pass@k of a set is 100 × the mean
 * over problems ({@link passAtKPercent}).
 *
 * Avg@k is the mean accuracy of k samples per problem: 100 × mean over problems of
 * (correct among the **first k** samples) / k ({@link avgAtK}). Taking the first k, rather than all
 * n, is what makes Avg@8 from a run of 32 samples equal to Avg@8 of a run of 8 (each sample is
 * drawn independently, in order).
 *
 * @example
 * ```ts
 * import { avgAtK, passAtK } from "./pass_at_k.ts";
 * passAtK(16, 3, 8); // 0.9
 * avgAtK([[true, false, true, true], [false, false, false, true]], 2); // 25 (= (1/2 + 0) / 2)
 * ```
 *
 * @module
 */

/** Per-problem counts that pass@k needs: n samples, c of them correct. */
export interface SampleCounts {
  /** Samples drawn for the problem. */
  n: number;
  /** Correct samples among them. */
  c: number;
}

function checkInteger(what: string, name: string, value: number, lo: number, hi: number): void {
  if (!Number.isInteger(value) || value < lo || value > hi) {
    throw new RangeError(`${what}: ${name} is ${value}; expected an integer in [${lo}, ${hi}]`);
  }
}

/**
 * Unbiased pass@k of one problem, as a probability.
 *
 * @param n Samples drawn (≥ 1).
 * @param c Correct samples (0 ≤ c ≤ n).
 * @param k Subset size (1 ≤ k ≤ n).
 * @returns 1 − C(n−c, k)/C(n, k), in [0, 1].
 * @throws RangeError naming n, c or k when one is not an integer in its range (k > n included).
 * @example
 * ```ts
 * import { passAtK } from "./pass_at_k.ts";
 * passAtK(8, 2, 4); // 0.785714… (= 1 − 3/14)
 * passAtK(8, 5, 4); // 1 (only 3 wrong samples: every 4-subset holds a correct one)
 * passAtK(8, 0, 4); // 0
 * ```
 */
export function passAtK(n: number, c: number, k: number): number {
  checkInteger("passAtK", "n", n, 1, Number.MAX_SAFE_INTEGER);
  checkInteger("passAtK", "c", c, 0, n);
  checkInteger("passAtK", "k", k, 1, n);
  if (n - c < k) return 1;
  // C(n−c, k)/C(n, k) = Π_{j=n−c+1}^{n} (j − k)/j: the chance that all k picks miss the c correct.
  let miss = 1;
  for (let j = n - c + 1; j <= n; j++) miss *= 1 - k / j;
  return 1 - miss;
}

/**
 * Pass@k of a set of problems in percent: 100 × mean over problems of {@link passAtK}.
 *
 * @param problems Per-problem `{ n, c }` (extra fields are ignored, so result records fit).
 * @param k Subset size; every problem needs n ≥ k.
 * @returns A percentage in [0, 100].
 * @throws RangeError for an empty list, or naming the problem whose n, c or k is bad.
 * @example
 * ```ts
 * import { passAtKPercent } from "./pass_at_k.ts";
 * passAtKPercent([{ n: 16, c: 3 }, { n: 16, c: 0 }], 8); // 45
 * ```
 */
export function passAtKPercent(problems: readonly SampleCounts[], k: number): number {
  if (problems.length === 0) {
    throw new RangeError("passAtKPercent: no problems; expected at least one");
  }
  let sum = 0;
  problems.forEach(({ n, c }, i) => {
    try {
      sum += passAtK(n, c, k);
    } catch (error) {
      throw new RangeError(`passAtKPercent: problem ${i}: ${(error as Error).message}`);
    }
  });
  return (100 * sum) / problems.length;
}

/**
 * Avg@k in percent: 100 × mean over problems of (correct among the first k samples) / k.
 *
 * @param correct Per problem, per sample in sample order: was the answer correct. [problems][n]
 * @param k Samples per problem to average over; every problem needs at least k.
 * @returns A percentage in [0, 100].
 * @throws RangeError for an empty list, a bad k, or naming a problem with fewer than k samples.
 * @example
 * ```ts
 * import { avgAtK } from "./pass_at_k.ts";
 * avgAtK([[true, true, false, false]], 2); // 100 (the first two are correct)
 * avgAtK([[true, true, false, false]], 4); // 50
 * ```
 */
export function avgAtK(correct: readonly (readonly boolean[])[], k: number): number {
  if (correct.length === 0) throw new RangeError("avgAtK: no problems; expected at least one");
  checkInteger("avgAtK", "k", k, 1, Number.MAX_SAFE_INTEGER);
  let sum = 0;
  correct.forEach((samples, i) => {
    if (samples.length < k) {
      throw new RangeError(
        `avgAtK: problem ${i} has ${samples.length} samples; expected at least k = ${k}`,
      );
    }
    let hits = 0;
    for (let s = 0; s < k; s++) if (samples[s]) hits++;
    sum += hits / k;
  });
  return (100 * sum) / correct.length;
}
