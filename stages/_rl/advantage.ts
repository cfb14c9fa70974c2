/**
 * GRPO's group-normalized outcome advantage (DeepSeekMath; verl's `grpo` estimator, which the
 * SENT paper / verl reference implementation uses for every method).
 *
 * The G responses sampled for one prompt form a group. Each response's scalar reward is compared
 * with its group: subtract the group mean and, by default, divide by the group's unbiased
 * (Bessel-corrected, divide by G − 1) standard deviation plus a small ε:
 *
 * ```
 * μ = (1/G) Σ_j R_j
 * σ = sqrt( Σ_j (R_j − μ)² / (G − 1) )
 * A_i = (R_i − μ) / (σ + ε)        normalizeStd = true (default)
 * A_i = R_i − μ                    normalizeStd = false (Dr. GRPO style; not used by SENT)
 * ```
 *
 * Two edge cases, as in the reference: a group of one response uses μ = 0, σ = 1 (so its
 * advantage is its reward, divided by 1 + ε); a group whose rewards are all equal gets A = 0 for
 * every response (no learning signal; such groups are kept, not filtered, and counted by
 * {@link zeroVarianceGroups} for the logs). The trainer broadcasts A_i to every response token.
 *
 * Layout: `rewards` is flat, group-major: group g holds indices [g·G, (g+1)·G).
 *
 * @example
 * ```ts
 * import { groupAdvantages } from "./advantage.ts";
 * groupAdvantages([1, -1, -1, -1, 1, -1, -1, -1], 8);
 * // Float64Array [1.620183, -0.540061, -0.540061, -0.540061, 1.620183, -0.540061, …]
 * ```
 *
 * @module
 */

/** Options for {@link groupAdvantages}. */
export interface AdvantageOptions {
  /** ε added to σ before dividing (default 1e-6, verl's value). Must be ≥ 0. */
  eps?: number;
  /** Divide by σ + ε (default true, verl's `norm_adv_by_std_in_grpo`); false keeps R − μ. */
  normalizeStd?: boolean;
}

/** Check the shared arguments and return the number of groups. */
function countGroups(rewards: ArrayLike<number>, groupSize: number, what: string): number {
  if (!Number.isInteger(groupSize) || groupSize < 1) {
    throw new RangeError(`${what}: groupSize is ${groupSize}; expected a positive integer`);
  }
  if (rewards.length % groupSize !== 0) {
    throw new RangeError(
      `${what}: ${rewards.length} rewards do not split into groups of ${groupSize}; ` +
        `expected a multiple of ${groupSize}`,
    );
  }
  for (let i = 0; i < rewards.length; i++) {
    if (!Number.isFinite(rewards[i])) {
      throw new RangeError(`${what}: reward ${i} is ${rewards[i]}; expected a finite number`);
    }
  }
  return rewards.length / groupSize;
}

/** True when every reward in [start, start + size) equals the first one. */
function allEqual(rewards: ArrayLike<number>, start: number, size: number): boolean {
  for (let j = start + 1; j < start + size; j++) if (rewards[j] !== rewards[start]) return false;
  return true;
}

/**
 * Group-normalized advantage of every response.
 *
 * @param rewards Scalar rewards [numGroups·G], group-major (group g at [g·G, (g+1)·G)).
 * @param groupSize G, responses per prompt.
 * @param options `eps` (default 1e-6) and `normalizeStd` (default true).
 * @returns Advantages [numGroups·G], same order as `rewards`.
 * @throws RangeError for a non-positive or fractional group size, a length that is not a
 *   multiple of it, a non-finite reward, or a negative ε.
 * @example
 * ```ts
 * import { groupAdvantages } from "./advantage.ts";
 * groupAdvantages([1, 1, 1, 1], 4); // Float64Array [0, 0, 0, 0]
 * groupAdvantages([1, -1], 2, { normalizeStd: false }); // Float64Array [1, -1]
 * ```
 */
export function groupAdvantages(
  rewards: ArrayLike<number>,
  groupSize: number,
  options: AdvantageOptions = {},
): Float64Array {
  const { eps = 1e-6, normalizeStd = true } = options;
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`groupAdvantages: eps is ${eps}; expected a finite number ≥ 0`);
  }
  const groups = countGroups(rewards, groupSize, "groupAdvantages");
  const out = new Float64Array(rewards.length); // [groups·G]
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    if (groupSize > 1 && allEqual(rewards, start, groupSize)) continue; // A = 0, left as is
    let mean = 0;
    let std = 1; // a group of one: μ = 0, σ = 1
    if (groupSize > 1) {
      for (let j = start; j < start + groupSize; j++) mean += rewards[j];
      mean /= groupSize;
      let squares = 0;
      for (let j = start; j < start + groupSize; j++) squares += (rewards[j] - mean) ** 2;
      std = Math.sqrt(squares / (groupSize - 1));
    }
    const scale = normalizeStd ? 1 / (std + eps) : 1;
    for (let j = start; j < start + groupSize; j++) out[j] = (rewards[j] - mean) * scale;
  }
  return out;
}

/**
 * Fraction of groups whose rewards are all equal, so that their advantages are all zero (the
 * "no learning signal" share logged with each step). Groups of one response never count: their
 * advantage is their reward (μ = 0, σ = 1).
 *
 * @param rewards Scalar rewards [numGroups·G], group-major.
 * @param groupSize G, responses per prompt.
 * @returns A fraction in [0, 1]; 0 for no rewards.
 * @throws RangeError for the same bad arguments as {@link groupAdvantages}.
 * @example
 * ```ts
 * import { zeroVarianceGroups } from "./advantage.ts";
 * zeroVarianceGroups([1, 1, -1, 1, -1, -1], 2); // 2/3 (groups [1,1] and [-1,-1])
 * ```
 */
export function zeroVarianceGroups(rewards: ArrayLike<number>, groupSize: number): number {
  const groups = countGroups(rewards, groupSize, "zeroVarianceGroups");
  if (groups === 0 || groupSize === 1) return 0;
  let flat = 0;
  for (let g = 0; g < groups; g++) if (allEqual(rewards, g * groupSize, groupSize)) flat++;
  return flat / groups;
}
