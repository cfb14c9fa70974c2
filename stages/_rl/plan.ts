/**
 * The order in which a training run visits its problems: stages (curriculum buckets, or one
 * stage holding the whole set), epochs within a stage, and the prompts of every rollout step.
 *
 * Each epoch is a fresh seeded permutation of its stage's problems, keyed by (seed, stage,
 * epoch), and is cut into steps of `promptsPerStep` prompts; a last partial step is dropped,
 * as the reference trainer's data loader does. The plan is a pure function of its inputs, so a
 * resumed run recomputes exactly the plan it was following, and a step's global index is
 * enough to find its prompts again.
 *
 * @example
 * ```ts
 * import { trainingPlan } from "./plan.ts";
 * const plan = trainingPlan([["a", "b", "c", "d"]], { epochs: 2, promptsPerStep: 2, seed: 1 });
 * plan.stages[0].steps.length; // 4 (2 epochs × 2 steps)
 * ```
 *
 * @module
 */

import { Rng } from "../../pipeline/rng.ts";

/** Options of {@link trainingPlan}. */
export interface PlanOptions {
  /** Epochs over each stage's problems. */
  epochs: number;
  /** Prompts per rollout step. */
  promptsPerStep: number;
  /** Seed of the per-epoch permutations. */
  seed: number;
}

/** One stage of the plan: a bucket of problems and its steps, in order. */
export interface PlanStage {
  /** Index of the stage (the curriculum bucket). */
  readonly index: number;
  /** Problem ids of each rollout step, in order (epoch after epoch). */
  readonly steps: readonly (readonly string[])[];
  /** Epoch of each step. */
  readonly epochOf: readonly number[];
}

/** A whole training plan. */
export interface TrainingPlan {
  readonly stages: readonly PlanStage[];
  /** Steps over all stages. */
  readonly totalSteps: number;
}

/**
 * Plan a run over buckets of problem ids.
 *
 * @param buckets Problem ids per stage, in training order (one bucket without a curriculum).
 * @param options Epochs, prompts per step, seed.
 * @returns The stages with their steps.
 * @throws Error naming the bucket that is too small for one step.
 */
export function trainingPlan(
  buckets: readonly (readonly string[])[],
  options: PlanOptions,
): TrainingPlan {
  const { epochs, promptsPerStep } = options;
  const stages = buckets.map((bucket, index): PlanStage => {
    if (bucket.length < promptsPerStep) {
      throw new Error(
        `training stage ${index} has ${bucket.length} problems, fewer than ` +
          `train.promptsPerStep (${promptsPerStep}); use fewer buckets or fewer prompts per step`,
      );
    }
    const steps: string[][] = [];
    const epochOf: number[] = [];
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = permutation(bucket, Rng.fromSeed(`plan/${options.seed}/${index}/${epoch}`));
      for (let s = 0; s + promptsPerStep <= order.length; s += promptsPerStep) {
        steps.push(order.slice(s, s + promptsPerStep));
        epochOf.push(epoch);
      }
    }
    return { index, steps, epochOf };
  });
  return { stages, totalSteps: stages.reduce((n, s) => n + s.steps.length, 0) };
}

/** Fisher–Yates shuffle of a copy, driven by a seeded stream. */
function permutation(items: readonly string[], rng: Rng): string[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
