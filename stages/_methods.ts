/**
 * The training methods a `train[method, seed]` node can run: which registered policy loss it
 * optimises and whether it walks the semantic-entropy curriculum. One entry per method; a new
 * method (or ablation) is one new line.
 *
 * Only SENT uses the curriculum in the paper; every baseline trains on the whole shuffled
 * training set. `sent_no_curriculum` and `grpo_curriculum` separate the two halves of SENT: its
 * token-level loss and its data ordering.
 *
 * @example
 * ```ts
 * import { trainingMethod } from "./_methods.ts";
 * trainingMethod("sent").curriculum; // true
 * ```
 *
 * @module
 */

/** What one training method is made of. */
export interface TrainingMethod {
  /** Name of the policy loss in the loss registry (kernels/losses.ts). */
  readonly loss: string;
  /** Train bucket after bucket, low semantic entropy first (else the whole set, shuffled). */
  readonly curriculum: boolean;
  /** One line for reports. */
  readonly label: string;
}

/** Every training method, by name (the values of `train.methods`). */
export const TRAINING_METHODS: Readonly<Record<string, TrainingMethod>> = {
  grpo: { loss: "grpo", curriculum: false, label: "GRPO" },
  entropy_bonus: { loss: "entropy_bonus", curriculum: false, label: "w/ En" },
  entropy_adv: { loss: "entropy_adv", curriculum: false, label: "w/ Adv" },
  high_entropy_mask: { loss: "high_entropy_mask", curriculum: false, label: "w/ Mask" },
  clip_cov: { loss: "clip_cov", curriculum: false, label: "w/ Clip" },
  kl_cov: { loss: "kl_cov", curriculum: false, label: "w/ Cov" },
  high_en: { loss: "high_en", curriculum: false, label: "w/ High_En (inferred)" },
  sent: { loss: "sent", curriculum: true, label: "SENT" },
  sent_no_curriculum: { loss: "sent", curriculum: false, label: "SENT w/o curriculum" },
  grpo_curriculum: { loss: "grpo", curriculum: true, label: "GRPO + curriculum" },
};

/** Names of every training method, in table order. */
export const TRAINING_METHOD_NAMES: readonly string[] = Object.keys(TRAINING_METHODS);

/**
 * Look up a training method.
 *
 * @param name A value of `train.methods`.
 * @returns Its loss and curriculum flag.
 * @throws Error naming the method and listing the known ones.
 */
export function trainingMethod(name: string): TrainingMethod {
  const method = TRAINING_METHODS[name];
  if (!method) {
    throw new Error(
      `unknown training method "${name}"; expected one of ${TRAINING_METHOD_NAMES.join(", ")}`,
    );
  }
  return method;
}
