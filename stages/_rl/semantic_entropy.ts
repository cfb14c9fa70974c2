/**
 * Discrete semantic entropy of one question (Kuhn et al. 2023; Farquhar et al., Nature 2024), the
 * difficulty score of the SENT curriculum.
 *
 * Sample M responses to the question, take each one's final answer, group the answers that mean
 * the same thing, and measure how spread the M responses are over the groups:
 *
 * ```
 * p_k = n_k / M                       n_k = responses in cluster k
 * SE  = − Σ_k p_k · ln p_k            (nats; 0 when all agree, ln M when all differ)
 * ```
 *
 * For math, "mean the same thing" is grader equality of the final answers. Clusters are built
 * greedily in the order answers first appear, the way Kuhn et al. cluster with bidirectional
 * entailment: each answer is compared with the first member (the representative) of every cluster
 * so far, joins the first one it equals, or starts a new cluster. Every unparsable response
 * (answer `null`) goes into one shared cluster, never compared with the grader. This is the
 * count-based estimator: cluster probabilities are frequencies, not summed sequence likelihoods,
 * which for long chains of thought are tiny and length-biased.
 *
 * SE measures disagreement, not correctness: a question answered wrongly but consistently has
 * SE = 0.
 *
 * @example
 * ```ts
 * import { semanticEntropy } from "./semantic_entropy.ts";
 * import { mathEqual } from "../../data/grade/mod.ts";
 * const se = semanticEntropy(["12", "12.0", null, "7", "\\frac{24}{2}", null, "7", "3"], mathEqual);
 * se.clusters; // [3, 2, 2, 1]
 * se.entropy; // 1.320888 (nats)
 * ```
 *
 * @module
 */

/** Units for the entropy: natural log (nats, the default) or log base 2 (bits). */
export type EntropyUnit = "nats" | "bits";

const LOG_OF_BASE: Record<EntropyUnit, number> = { nats: 1, bits: Math.LN2 };

/** Options for {@link semanticEntropy}. */
export interface SemanticEntropyOptions {
  /** Unit of the result (default `"nats"`: natural log). `"bits"` divides by ln 2. */
  unit?: EntropyUnit;
}

/** Clusters of one question's answers and their entropy. */
export interface SemanticEntropyResult {
  /** −Σ p_k ln p_k over clusters (in `unit`, nats by default). */
  entropy: number;
  /** Size n_k of each cluster, in order of first appearance; sums to M. */
  clusters: number[];
  /** Cluster index of each answer, aligned with the input. [M] */
  clusterOf: number[];
}

/**
 * Cluster answers by grader equality and compute their discrete semantic entropy.
 *
 * @param answers Final answer of each of the M responses, in sample order; `null` = unparsable.
 * @param equal Equivalence of two answers, called as `equal(answer, representative)`; for math
 *   use the grader (`mathEqual`). It is never called with a `null`.
 * @param options Unit of the result.
 * @returns Entropy, cluster sizes (first-appearance order) and the cluster of each answer.
 * @throws RangeError for an empty answer list or an unknown unit.
 * @example
 * ```ts
 * import { semanticEntropy } from "./semantic_entropy.ts";
 * const same = (a: string, b: string) => a === b;
 * semanticEntropy(["4", "4", "4"], same).entropy; // 0
 * semanticEntropy(["1", "2", "3", "4"], same, { unit: "bits" }).entropy; // 2
 * semanticEntropy([null, "4", null], same).clusterOf; // [0, 1, 0]
 * ```
 */
export function semanticEntropy(
  answers: readonly (string | null)[],
  equal: (a: string, b: string) => boolean,
  options: SemanticEntropyOptions = {},
): SemanticEntropyResult {
  const unit = options.unit ?? "nats";
  if (!(unit in LOG_OF_BASE)) {
    throw new RangeError(
      `semanticEntropy: unit is "${unit}"; expected one of ${Object.keys(LOG_OF_BASE).join(", ")}`,
    );
  }
  if (answers.length === 0) {
    throw new RangeError("semanticEntropy: no answers; expected at least one response");
  }
  const representatives: (string | null)[] = []; // first member of each cluster
  const clusters: number[] = [];
  const clusterOf = answers.map((answer) => {
    let k = representatives.findIndex((rep) =>
      answer === null ? rep === null : rep !== null && equal(answer, rep)
    );
    if (k < 0) {
      k = representatives.length;
      representatives.push(answer);
      clusters.push(0);
    }
    clusters[k]++;
    return k;
  });
  const m = answers.length;
  let entropy = 0;
  for (const size of clusters) entropy -= (size / m) * Math.log(size / m);
  // `+ 0` turns the −0 of a single cluster into 0.
  return { entropy: entropy / LOG_OF_BASE[unit] + 0, clusters, clusterOf };
}
