/**
 * Stage `evaluate[policy, seed]`: Pass@k and Avg@k of one policy on every eval set.
 *
 * Policies: `base`; the base sampled at each lower temperature of `evaluate.baseTemperatures`
 * (`base@t0.5`, …: does RL beat simply sharpening the base?); and the final policy of every
 * trained method (`train[method, seed]` of the same seed). For each problem, n samples
 * (`evaluate.samples` ≥ the largest k) at `evaluate.temperature` (or the base row's own), then:
 * unbiased Pass@k from all n samples and Avg@k over the first k samples, for every k in
 * `evaluate.ks`; plus one greedy decode per problem (greedy accuracy).
 *
 * Random numbers: sample j of problem p of set s uses the counter stream (`evaluate/<seed>`,
 * `s/p`, j), the same for every policy, so policies are compared on common random numbers.
 *
 * Answers are read from the evaluation prompt's responses (for a checkpoint, the paper's
 * `\boxed{}` prompt; generation stops at any EOS id of the tokenizer) and graded under
 * `grader.mode`: `lenient` compares values, `opencompass-v2` the paper's harness rules.
 *
 * Produces `eval.json`: `{ policy, seed, temperature, grader, sets: { <set>: { n, "pass@k",
 * "avg@k", greedy, grader, problems: [{ id, n, c, correct, answers, lengths, finish, greedy }] } }
 * }`, values in percent; `grader` is the mode that produced them. The `results` stage gathers
 * every node's file into `results.json`, where each seed's entry keeps its `grader`.
 *
 * @module
 */

import { defineStage, type Params } from "../pipeline/stage.ts";
import type { ProblemRow } from "../data/rows.ts";
import { estimateEvaluate } from "./_estimate.ts";

/** The config slice this stage reads. */
export type EvaluateConfig = {
  evaluate: {
    /** Samples n per problem. */
    samples: number;
    /** k values (each ≤ n). */
    ks: number[];
    /** Sampling temperature of the trained policies and of `base`. */
    temperature: number;
    /** Lower temperatures at which the base is also evaluated. */
    baseTemperatures: number[];
    /** Nucleus mass. */
    topP: number;
    /** Response token limit. */
    maxTokens: number;
    /** Requests per generation batch. */
    batchSize: number;
  };
  data: { evalSets: string[] };
  /** Answer equivalence (data/grade/modes.ts); recorded beside every number. */
  grader: { mode: string };
};

/** Policy names a run evaluates: base, the base at each lower temperature, each method. */
export function evaluatedPolicies(config: Record<string, unknown>): string[] {
  const evaluate = config.evaluate as { baseTemperatures?: number[] } | undefined;
  const train = config.train as { methods?: string[] } | undefined;
  return [
    "base",
    ...(evaluate?.baseTemperatures ?? []).map((t) => `base@t${t}`),
    ...(train?.methods ?? []),
  ];
}

/** The base row's temperature from a policy name like `base@t0.5`, else undefined. */
export function baseTemperature(policy: string): number | undefined {
  const match = /^base@t([0-9.]+)$/.exec(policy);
  return match ? Number(match[1]) : undefined;
}

const isBase = (policy: string) => policy === "base" || baseTemperature(policy) !== undefined;

export const evaluate = defineStage<EvaluateConfig>({
  name: "evaluate",
  module: import.meta.url,
  doc: "Pass@k, Avg@k and greedy accuracy of one policy (base, base@tT or a method) per eval set.",
  upstream: [
    "dataset",
    "base",
    {
      stage: "train",
      match: (down: Params, up: Params) => down.policy === up.method && down.seed === up.seed,
    },
  ],
  configKeys: ["evaluate", "data.evalSets", "grader"],
  params: { policy: evaluatedPolicies, seed: "runtime.seeds" },
  engine: true,
  estimate: estimateEvaluate,
  async run(ctx) {
    const { loadStagePolicy } = await import("./_policy_io.ts");
    const { generate } = await import("../kernels/sampling.ts");
    const { reward } = await import("../data/reward.ts");
    const { seedResult } = await import("./_rl/results.ts");
    const e = ctx.config.evaluate;
    const policyName = String(ctx.params.policy);
    const seed = Number(ctx.params.seed);
    const maxK = Math.max(...e.ks);
    if (maxK > e.samples) {
      throw new Error(
        `evaluate.ks has k = ${maxK}; expected every k ≤ evaluate.samples (${e.samples})`,
      );
    }
    const temperature = baseTemperature(policyName) ?? e.temperature;

    // ── the policy ──────────────────────────────────────────────────────────────────────────
    const trained = isBase(policyName) ? undefined : ctx.input("train").path("policy");
    const bundle = await loadStagePolicy(ctx.input("base"), {
      device: ctx.device,
      threads: ctx.threads,
      weightsDir: trained,
      use: "eval",
      grader: ctx.config.grader.mode,
    });
    const sampling = {
      maxNewTokens: e.maxTokens,
      padId: bundle.tokenizer.padId,
      eosId: bundle.tokenizer.eosId,
      eosIds: bundle.stopIds,
      topP: e.topP,
      batchSize: e.batchSize,
    };

    // ── every eval set ──────────────────────────────────────────────────────────────────────
    const sets: Record<string, unknown> = {};
    const summary: Record<string, number> = {};
    for (const set of ctx.config.data.evalSets) {
      const rows = (await ctx.input("dataset").readText(`eval/${set}.jsonl`)).trim().split("\n")
        .map((line) => JSON.parse(line) as ProblemRow);
      const requests = rows.flatMap((row) => {
        const prompt = bundle.promptIds(row.problem);
        return Array.from({ length: e.samples }, (_, j) => ({
          prompt,
          problem: `${set}/${row.id}`,
          sample: j,
        }));
      });
      const bar = ctx.progress(requests.length + rows.length, `${set} samples`);
      let done = 0;
      const tick = (n: number) => {
        bar.tick(n - done);
        done = n;
      };
      const sampled = await generate(bundle.policy, requests, {
        ...sampling,
        seed: `evaluate/${seed}`,
        temperature,
        onProgress: tick,
      });
      done = 0;
      const greedy = await generate(
        bundle.policy,
        rows.map((row) => ({ prompt: bundle.promptIds(row.problem), problem: row.id, sample: 0 })),
        { ...sampling, seed: `evaluate/${seed}/greedy`, temperature: 0, onProgress: tick },
      );
      bar.done();

      const problems = rows.map((row, p) => {
        const own = sampled.slice(p * e.samples, (p + 1) * e.samples);
        const graded = own.map((c) =>
          reward(bundle.responseText(c.tokens), row.answer, bundle.reward)
        );
        const greedyCorrect =
          reward(bundle.responseText(greedy[p].tokens), row.answer, bundle.reward).reward > 0;
        return {
          id: row.id,
          n: e.samples,
          c: graded.filter((g) => g.reward > 0).length,
          correct: graded.map((g) => g.reward > 0),
          answers: graded.map((g) => g.answer),
          lengths: own.map((c) => c.tokens.length),
          finish: own.map((c) => c.finish),
          greedy: greedyCorrect,
        };
      });
      const result = seedResult(problems, e.ks);
      const greedyAccuracy = 100 * problems.filter((p) => p.greedy).length / problems.length;
      sets[set] = { ...result, greedy: greedyAccuracy, grader: ctx.config.grader.mode };
      summary[`${set}/avg@${maxK}`] = result["avg@k"][String(maxK)];
      summary[`${set}/pass@${maxK}`] = result["pass@k"][String(maxK)];
      summary[`${set}/greedy`] = greedyAccuracy;
      ctx.log.info(
        `${set}: Avg@${maxK} ${result["avg@k"][String(maxK)].toFixed(2)} · Pass@${maxK} ` +
          `${result["pass@k"][String(maxK)].toFixed(2)} · greedy ${greedyAccuracy.toFixed(2)}`,
      );
    }
    await bundle.policy.release();
    ctx.metrics.summary({ ...summary, grader: ctx.config.grader.mode });
    await Deno.writeTextFile(
      `${ctx.outDir}/eval.json`,
      JSON.stringify({
        policy: policyName,
        seed,
        temperature,
        grader: ctx.config.grader.mode,
        ks: e.ks,
        sets,
      }) + "\n",
    );
  },
});
