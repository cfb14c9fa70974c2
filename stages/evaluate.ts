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
 * Sharding (`evaluate.shards` > 1): the node's requests (every set's samples, problem-major,
 * then its greedy decodes) are cut into contiguous ranges; each shard generates its range and
 * stores every response (text, length, finish) and the reward options its policy came with; the
 * merge grades them with those options and writes `eval.json` exactly as one unsharded run does.
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

import { defineStage, type Params, type Shard, type StageContext } from "../pipeline/stage.ts";
import type { ProblemRow } from "../data/rows.ts";
import type { RewardOptions } from "../data/reward.ts";
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
    const sets = await evalSets(ctx);
    await writeEvaluation(ctx, sets, await sampleUnits(ctx, sets));
  },
  // Shards split every set's (problem, sample) and greedy requests; the merge grades them.
  shards: {
    count: "evaluate.shards",
    async run(ctx, shard) {
      const part = await sampleUnits(ctx, await evalSets(ctx), shard);
      await Deno.writeTextFile(
        `${ctx.outDir}/${SHARD_COMPLETIONS}`,
        part.completions.map((c) => JSON.stringify(c) + "\n").join(""),
      );
      await Deno.writeTextFile(`${ctx.outDir}/${SHARD_REWARD}`, JSON.stringify(part.reward) + "\n");
    },
    async merge(ctx, shards) {
      const all: Sampled = { completions: [], reward: null };
      for (const shard of shards) {
        const text = await shard.readText(SHARD_COMPLETIONS);
        for (const line of text.split("\n")) {
          if (line !== "") all.completions.push(JSON.parse(line));
        }
        all.reward ??= await shard.readJson<RewardOptions | null>(SHARD_REWARD);
      }
      await writeEvaluation(ctx, await evalSets(ctx), all);
    },
  },
});

/** A shard's completions, one JSON line per request of its range ({@link SampledCompletion}). */
const SHARD_COMPLETIONS = "completions.jsonl";
/** The reward options a shard's policy came with (null for a shard with no requests). */
const SHARD_REWARD = "reward.json";

/** Marks a greedy decode in {@link SampledCompletion.sample}. */
const GREEDY = -1;

/** One generated response: what grading needs from it. */
interface SampledCompletion {
  /** Eval set name. */
  set: string;
  /** Index of the problem in the set. */
  problem: number;
  /** Sample index j, or {@link GREEDY}. */
  sample: number;
  /** Decoded response. */
  text: string;
  /** Length in tokens. */
  length: number;
  /** Why it ended. */
  finish: string;
}

/** Completions of a run of requests, in order, and how the policy's responses are graded. */
interface Sampled {
  completions: SampledCompletion[];
  /** Null when there were no requests. */
  reward: RewardOptions | null;
}

type EvaluateContext = StageContext<EvaluateConfig>;

/** An eval set's rows. */
interface EvalSet {
  name: string;
  rows: ProblemRow[];
}

async function evalSets(ctx: EvaluateContext): Promise<EvalSet[]> {
  const e = ctx.config.evaluate;
  const maxK = Math.max(...e.ks);
  if (maxK > e.samples) {
    throw new Error(
      `evaluate.ks has k = ${maxK}; expected every k ≤ evaluate.samples (${e.samples})`,
    );
  }
  const sets: EvalSet[] = [];
  for (const name of ctx.config.data.evalSets) {
    const rows = (await ctx.input("dataset").readText(`eval/${name}.jsonl`)).trim().split("\n")
      .map((line) => JSON.parse(line) as ProblemRow);
    sets.push({ name, rows });
  }
  return sets;
}

/**
 * The requests of a node, in order: for each set, its n samples of every problem (p-major),
 * then one greedy decode per problem. All of them, or a shard's range, generated.
 */
async function sampleUnits(
  ctx: EvaluateContext,
  sets: EvalSet[],
  shard?: Shard,
): Promise<Sampled> {
  const e = ctx.config.evaluate;
  const units = sets.flatMap((set) => [
    ...set.rows.flatMap((_, p) => Array.from({ length: e.samples }, (_, j) => ({ set, p, j }))),
    ...set.rows.map((_, p) => ({ set, p, j: GREEDY })),
  ]);
  const [start, end] = shard ? shard.range(units.length) : [0, units.length];
  const mine = units.slice(start, end);
  if (mine.length === 0) return { completions: [], reward: null };
  const { loadStagePolicy } = await import("./_policy_io.ts");
  const { generate } = await import("../kernels/sampling.ts");
  const policyName = String(ctx.params.policy);
  const seed = Number(ctx.params.seed);
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

  // ── every eval set: its samples, then its greedy decodes ───────────────────────────────
  const out: SampledCompletion[] = [];
  for (const set of sets) {
    const sampled = mine.filter((u) => u.set === set && u.j !== GREEDY);
    const greedy = mine.filter((u) => u.set === set && u.j === GREEDY);
    if (sampled.length + greedy.length === 0) continue;
    const bar = ctx.progress(sampled.length + greedy.length, `${set.name} samples`);
    let done = 0;
    const tick = (n: number) => {
      bar.tick(n - done);
      done = n;
    };
    const completions = await generate(
      bundle.policy,
      sampled.map((u) => ({
        prompt: bundle.promptIds(set.rows[u.p].problem),
        problem: `${set.name}/${set.rows[u.p].id}`,
        sample: u.j,
      })),
      { ...sampling, seed: `evaluate/${seed}`, temperature, onProgress: tick },
    );
    done = 0;
    const decoded = await generate(
      bundle.policy,
      greedy.map((u) => ({
        prompt: bundle.promptIds(set.rows[u.p].problem),
        problem: set.rows[u.p].id,
        sample: 0,
      })),
      { ...sampling, seed: `evaluate/${seed}/greedy`, temperature: 0, onProgress: tick },
    );
    bar.done();
    const keep = (u: { p: number; j: number }, c: { tokens: number[]; finish: string }) =>
      out.push({
        set: set.name,
        problem: u.p,
        sample: u.j,
        text: bundle.responseText(c.tokens),
        length: c.tokens.length,
        finish: c.finish,
      });
    sampled.forEach((u, i) => keep(u, completions[i]));
    greedy.forEach((u, i) => keep(u, decoded[i]));
  }
  await bundle.policy.release();
  return { completions: out, reward: bundle.reward };
}

/** Grade every completion of every set and write `eval.json`. */
async function writeEvaluation(
  ctx: EvaluateContext,
  sets: EvalSet[],
  sampled: Sampled,
): Promise<void> {
  const { reward } = await import("../data/reward.ts");
  const { seedResult } = await import("./_rl/results.ts");
  const all = sampled.completions;
  const e = ctx.config.evaluate;
  const policyName = String(ctx.params.policy);
  const seed = Number(ctx.params.seed);
  const maxK = Math.max(...e.ks);
  const temperature = baseTemperature(policyName) ?? e.temperature;
  const expected = sets.reduce((sum, set) => sum + set.rows.length * (e.samples + 1), 0);
  if (all.length !== expected) {
    throw new Error(
      `evaluate: ${all.length} completions for ${sets.length} eval sets; expected ${expected}`,
    );
  }
  // Graded as the loaded policy's evaluation use says (none only when there are no problems).
  const rewardOptions = sampled.reward ?? {};

  const results: Record<string, unknown> = {};
  const summary: Record<string, number> = {};
  let offset = 0;
  for (const { name: set, rows } of sets) {
    const sampled = all.slice(offset, offset + rows.length * e.samples);
    const greedy = all.slice(
      offset + rows.length * e.samples,
      offset + rows.length * (e.samples + 1),
    );
    offset += rows.length * (e.samples + 1);
    const problems = rows.map((row, p) => {
      const own = sampled.slice(p * e.samples, (p + 1) * e.samples);
      const graded = own.map((c) => reward(c.text, row.answer, rewardOptions));
      const greedyCorrect = reward(greedy[p].text, row.answer, rewardOptions).reward > 0;
      return {
        id: row.id,
        n: e.samples,
        c: graded.filter((g) => g.reward > 0).length,
        correct: graded.map((g) => g.reward > 0),
        answers: graded.map((g) => g.answer),
        lengths: own.map((c) => c.length),
        finish: own.map((c) => c.finish),
        greedy: greedyCorrect,
      };
    });
    const result = seedResult(problems, e.ks);
    const greedyAccuracy = 100 * problems.filter((p) => p.greedy).length / problems.length;
    results[set] = { ...result, greedy: greedyAccuracy, grader: ctx.config.grader.mode };
    summary[`${set}/avg@${maxK}`] = result["avg@k"][String(maxK)];
    summary[`${set}/pass@${maxK}`] = result["pass@k"][String(maxK)];
    summary[`${set}/greedy`] = greedyAccuracy;
    ctx.log.info(
      `${set}: Avg@${maxK} ${result["avg@k"][String(maxK)].toFixed(2)} · Pass@${maxK} ` +
        `${result["pass@k"][String(maxK)].toFixed(2)} · greedy ${greedyAccuracy.toFixed(2)}`,
    );
  }
  ctx.metrics.summary({ ...summary, grader: ctx.config.grader.mode });
  await Deno.writeTextFile(
    `${ctx.outDir}/eval.json`,
    JSON.stringify({
      policy: policyName,
      seed,
      temperature,
      grader: ctx.config.grader.mode,
      ks: e.ks,
      sets: results,
    }) + "\n",
  );
}
