/**
 * The method choices a run makes that the SENT paper and its reference code do not pin down,
 * each with the config keys that hold our choice. The report lists them with the run's values,
 * so a reader knows which numbers rest on a guess. One entry per choice.
 *
 * @example
 * ```ts
 * import { inferredChoices } from "./inferred.ts";
 * const rows = inferredChoices({ loss: { entropyAlpha: 0.4, kappa: 2 } });
 * rows.find((r) => r.choice.startsWith("w/ Adv"))?.values; // ["loss.entropyAlpha = 0.4", "loss.kappa = 2"]
 * ```
 *
 * @module
 */

/** One inferred choice. */
export interface InferredChoice {
  /** What was chosen. */
  readonly choice: string;
  /** Which methods or stages it affects. */
  readonly appliesTo: string;
  /** What is known and why we chose as we did. */
  readonly basis: string;
  /** Config keys that hold the choice (dotted paths). */
  readonly keys: readonly string[];
}

/** Every inferred choice, in the order the pipeline makes them. */
export const INFERRED_CHOICES: readonly InferredChoice[] = [
  {
    choice: "Semantic-entropy sampling: scoring policy, samples M, temperature, top-p, length",
    appliesTo: "score → curriculum (SENT, GRPO + curriculum)",
    basis: "the reference ships no scoring code; we score with the run's base policy, natural " +
      "log (nats), answers clustered by grader equality, every unparsable answer in one cluster",
    keys: ["score.samples", "score.temperature", "score.topP", "score.maxTokens", "score.seed"],
  },
  {
    choice: "Curriculum split: number of buckets and where to cut",
    appliesTo: "curriculum (SENT, GRPO + curriculum)",
    basis: "two stages in the reference, the rule that made them unpublished; default an " +
      "equal-count (median) split, lowest SE first, ties broken by a seeded shuffle",
    keys: ["curriculum.split", "curriculum.buckets", "curriculum.thresholds", "curriculum.seed"],
  },
  {
    choice: "Which weights start a bucket, and the KL reference inside it",
    appliesTo: "train (curriculum methods)",
    basis: "the reference loads stage 1's final weights for stage 2; whether the reference " +
      "policy moves with them is not stated",
    keys: ["curriculum.epochsPerStage", "curriculum.resetReference"],
  },
  {
    choice: "w/ High_En: SENT's token rule on the top-20 % entropy tokens, no curriculum",
    appliesTo: "high_en",
    basis: "the column has no citation and no code; this is the best-supported reading of the " +
      "authors' own ablation",
    keys: ["loss.entropyTopRatio", "loss.klCovRatio", "loss.ppoKlCoef"],
  },
  {
    choice: "SENT's token rule: the intended boolean masking of the reference's v2 loss",
    appliesTo: "sent, sent_no_curriculum, high_en",
    basis: "the reference indexes with an integer mask and so computes covariances on " +
      "scrambled rows; v2-literal reproduces that, v1 and paper follow the abstract's wording",
    keys: ["loss.variant", "loss.hiMult", "loss.loMult"],
  },
  {
    choice: "w/ Adv: entropy-shaped advantage α and κ, old-policy entropy (detached)",
    appliesTo: "entropy_adv",
    basis: "not in the reference code; values from the method's own paper",
    keys: ["loss.entropyAlpha", "loss.kappa"],
  },
  {
    choice: "w/ En: entropy-bonus coefficient",
    appliesTo: "entropy_bonus",
    basis: "taken from one exploratory script of the reference",
    keys: ["loss.entropyCoef"],
  },
  {
    choice: "w/ Mask: top-share of high-entropy tokens and the loss normaliser",
    appliesTo: "high_entropy_mask",
    basis: "the 80/20 paper's share; whether the mean runs over all or only selected tokens " +
      "is not stated (default all)",
    keys: ["loss.entropyTopRatio", "loss.normalizer"],
  },
  {
    choice: "w/ Clip and w/ Cov: covariance ratios, Clip-Cov bounds, KL-Cov β",
    appliesTo: "clip_cov, kl_cov",
    basis: "the reference's config defaults; no tuned values are published",
    keys: [
      "loss.clipCovRatio",
      "loss.clipCovLb",
      "loss.clipCovUb",
      "loss.klCovRatio",
      "loss.ppoKlCoef",
    ],
  },
  {
    choice: "Statistic scope of the token selections and covariances",
    appliesTo: "every selecting method",
    basis: "the reference computes them per micro-batch on one GPU",
    keys: ["loss.statScope", "train.microBatchSize"],
  },
  {
    choice: "Pass@k / Avg@k protocol: one run of n samples per problem",
    appliesTo: "evaluate",
    basis: "the paper's configs use n = k; we draw n once, take Avg@k over the first k samples " +
      "and the unbiased Pass@k from all n",
    keys: ["evaluate.samples", "evaluate.ks", "evaluate.temperature"],
  },
  {
    choice: "Random choices inside losses: seeded, ties by flat index",
    appliesTo: "clip_cov and every top-k selection",
    basis: "the reference uses torch's RNG and unspecified tie order",
    keys: ["runtime.seeds"],
  },
];

/** A choice with the run's values. */
export interface InferredRow extends InferredChoice {
  /** `key = value` for each key, `key = —` when the config lacks it. */
  values: string[];
}

/** Read a dotted path from a nested object. */
function lookup(config: Record<string, unknown>, path: string): unknown {
  let value: unknown = config;
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * The inferred choices with the run's values.
 *
 * @param config The run's resolved config.
 * @returns One row per choice.
 */
export function inferredChoices(config: Record<string, unknown>): InferredRow[] {
  return INFERRED_CHOICES.map((choice) => ({
    ...choice,
    values: choice.keys.map((key) => {
      const value = lookup(config, key);
      return `${key} = ${value === undefined ? "—" : JSON.stringify(value)}`;
    }),
  }));
}
