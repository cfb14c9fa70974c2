/**
 * Pure functions the RL stages share: GRPO group advantages (`train`), unbiased pass@k and
 * Avg@k (`evaluate`), discrete semantic entropy (`score`), the curriculum split (`curriculum`)
 * and the `results.json` assembly (`evaluate`, read back by the reports). No I/O, no engine; all
 * randomness is seeded.
 *
 * @example
 * ```ts
 * import { curriculumSplit, groupAdvantages, passAtK, semanticEntropy } from "./mod.ts";
 * groupAdvantages([1, -1, -1, -1], 4); // ≈ [1.5, -0.5, -0.5, -0.5] (μ = −0.5, σ = 1)
 * passAtK(16, 3, 8); // 0.9
 * semanticEntropy(["1", "1", "2", null], (a, b) => a === b).clusters; // [2, 1, 1]
 * curriculumSplit([{ id: "a", se: 0 }, { id: "b", se: 1 }], { split: "quantiles", seed: 1 }).buckets;
 * // [["a"], ["b"]]
 * ```
 *
 * @module
 */

export * from "./advantage.ts";
export * from "./pass_at_k.ts";
export * from "./semantic_entropy.ts";
export * from "./curriculum_split.ts";
export * from "./results.ts";
