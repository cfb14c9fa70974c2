/**
 * Stage `train[method, seed]`: GRPO-family reinforcement learning of the base policy.
 *
 * Produces `policy/` (the final weights as an HF checkpoint, with the base's descriptor),
 * `metrics.jsonl` (one row per rollout step, names in {@link STEP_METRICS}) and `summary.json`.
 *
 * One rollout step, in the order it runs (the GRPO loop of the SENT paper's reference trainer):
 * 1. take the next `train.promptsPerStep` prompts of the plan (a seeded permutation per epoch,
 *    stage after stage for curriculum methods);
 * 2. sample G = `train.groupSize` responses per prompt from the current policy, each stopping
 *    at any EOS id of the tokenizer (prompts: the training form of the base's descriptor, for a
 *    checkpoint DAPO-Math-17k's, which asks for a last line `Answer: …`);
 * 3. reward each response ±1 (final answer, from the last `Answer:` line or else the last
 *    `\boxed{}`, graded against the gold answer under `grader.mode`) and normalise the rewards
 *    within each group: A_i = (R_i − mean) / (std + 1e-6);
 * 4. recompute π_old log-probs and entropies with the trainer's own score graph (not the
 *    sampler's numbers) and the reference policy's log-probs;
 * 5. split the responses into `train.miniBatches` mini-batches, in order; for each, accumulate
 *    the gradients of its micro-batches of `train.microBatchSize` responses (each micro-batch's
 *    loss weighted 1 / number of micro-batches) and take one AdamW step. With two or more
 *    mini-batches the later ones are off-policy (r ≠ 1), which is where the |log r| penalties
 *    of SENT and KL-Cov act.
 *
 * Curriculum methods train bucket after bucket, each for `curriculum.epochsPerStage` epochs,
 * starting from the previous bucket's final weights with a fresh optimizer; with
 * `curriculum.resetReference` the KL reference becomes the bucket's starting policy. Other
 * methods train `train.epochs` epochs over the whole set.
 *
 * Resuming: every `train.checkpointEvery` steps (and at each bucket's end) the trainer state
 * (weights, AdamW moments, update count), the reference weights and the plan position are
 * written atomically into the scratch directory. Random numbers are counter streams keyed by
 * (seed, global step, …), so nothing else needs saving: a run killed anywhere resumes from the
 * last checkpoint and ends with the same bytes as an uninterrupted run.
 *
 * @module
 */

import { defineStage } from "../pipeline/stage.ts";
import type { ProblemRow } from "../data/rows.ts";
import type { LossOptionsConfig } from "./_loss_config.ts";
import { estimateTrain } from "./_estimate.ts";

/** The config slice this stage reads. */
export type TrainConfig = {
  train: {
    epochs: number;
    promptsPerStep: number;
    groupSize: number;
    miniBatches: number;
    microBatchSize: number;
    lr: number;
    weightDecay: number;
    gradClip: number;
    adamBeta1: number;
    adamBeta2: number;
    klCoef: number;
    clipLow: number;
    clipHigh: number;
    temperature: number;
    topP: number;
    maxResponseTokens: number;
    checkpointEvery: number;
    batchSize: number;
  };
  loss: LossOptionsConfig;
  curriculum: { epochsPerStage: number; resetReference: boolean };
  /** Answer equivalence of the reward (data/grade/modes.ts). */
  grader: { mode: string };
};

/**
 * Names and meanings of the per-step metrics (`metrics.jsonl`); reports read this list. Besides
 * these, every metric of the loss graph is logged as `loss/<name>` (its definitions are
 * `LOSS_METRIC_DEFINITIONS` in kernels/losses.ts; `loss/total` is the scaled loss), averaged over
 * the step's micro-batches: the policy / KL / entropy parts, `ppo_kl`, the clip fractions and
 * each selection's share of the valid tokens.
 */
export const STEP_METRICS: Readonly<Record<string, string>> = {
  step: "global rollout step (0-based)",
  bucket: "curriculum bucket (0 without a curriculum)",
  epoch: "epoch within the bucket",
  "reward/mean": "mean ±1 reward of the step's responses",
  "reward/std": "standard deviation of those rewards",
  accuracy: "fraction of responses whose final answer is correct",
  zero_variance_groups: "fraction of prompt groups whose rewards are all equal (no signal)",
  entropy: "mean token entropy of the responses under π_old (nats)",
  ref_kl: "mean k3 KL of π_old to the reference on response tokens",
  response_length: "mean response length in tokens",
  grad_norm: "global gradient norm before clipping, mean over the step's updates",
  updates_skipped: "updates skipped for a non-finite gradient norm",
  lr: "learning rate",
  step_seconds: "wall time of the step",
  "seconds/generate": "time spent sampling",
  "seconds/score": "time spent recomputing π_old and reference log-probs",
  "seconds/update": "time spent in accumulate and apply",
  "tokens_per_s": "prompt + response tokens processed by the update per second",
  "rollout_tokens_per_s": "response tokens sampled per second",
};

export const train = defineStage<TrainConfig>({
  name: "train",
  module: import.meta.url,
  doc: "GRPO-family RL of the base policy: one node per (method, seed).",
  upstream: ["dataset", "base", "curriculum"],
  configKeys: [
    "train",
    "loss",
    "curriculum.epochsPerStage",
    "curriculum.resetReference",
    "grader",
  ],
  params: { method: "train.methods", seed: "runtime.seeds" },
  engine: true,
  estimate: estimateTrain,
  async run(ctx) {
    const { GrpoRun } = await import("./_grpo.ts");
    const { trainingMethod } = await import("./_methods.ts");
    const { trainingPlan } = await import("./_rl/plan.ts");
    const t = ctx.config.train;
    const method = trainingMethod(String(ctx.params.method));
    const seed = Number(ctx.params.seed);

    // ── the plan: which prompts each rollout step uses ─────────────────────────────────────
    const rows = (await ctx.input("dataset").readText("train.jsonl")).trim().split("\n")
      .map((line) => JSON.parse(line) as ProblemRow);
    const buckets = method.curriculum
      ? (await ctx.input("curriculum").readJson<{ buckets: string[][] }>("buckets.json")).buckets
      : [rows.map((r) => r.id)];
    const plan = trainingPlan(buckets, {
      epochs: method.curriculum ? ctx.config.curriculum.epochsPerStage : t.epochs,
      promptsPerStep: t.promptsPerStep,
      seed,
    });
    ctx.log.info(
      `${method.label}: ${plan.stages.length} stage(s), ${plan.totalSteps} rollout steps × ` +
        `${t.promptsPerStep} prompts × ${t.groupSize} responses`,
    );

    // ── the run ────────────────────────────────────────────────────────────────────────────
    const run = await GrpoRun.open(ctx, { method, seed, plan, rows });
    const bar = ctx.progress(plan.totalSteps, "steps");
    bar.tick(run.globalStep);
    while (!run.finished) {
      await run.step();
      bar.tick();
    }
    bar.done();
    const summary = await run.finish(`${ctx.outDir}/policy`);
    ctx.metrics.summary(summary);
    await Deno.writeTextFile(`${ctx.outDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  },
});
