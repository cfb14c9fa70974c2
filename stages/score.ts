/**
 * Stage `score`: the semantic entropy of every training problem under the base policy.
 *
 * For each problem, sample M responses with the rollout settings (`score.samples`,
 * `score.temperature`, `score.topP`, `score.maxTokens`) from the training prompt (the form RL
 * will train on), extract each final answer with the training reward's extractor, cluster the
 * answers by equality under `grader.mode` (every unparsable answer in one cluster) and take the
 * discrete semantic entropy SE = −Σ p_k ln p_k over cluster shares, in nats. SE measures
 * disagreement, not correctness: a problem answered wrongly but consistently has SE = 0.
 *
 * Produces `problems.jsonl` (per problem: id, answers, cluster sizes, semantic entropy,
 * accuracy, mean token entropy of its responses, response lengths), `summary.json` (SE
 * histogram, means, the settings used) and `token_entropy.json` (a histogram of every response
 * token's entropy, for the token-entropy figure).
 *
 * Random numbers: sample j of problem p uses the counter stream (`score/<seed>`, p, j), so the
 * result does not depend on batch size or on how problems are sharded.
 *
 * Sharding (`score.shards` > 1): the (problem, sample) requests, problem-major, are cut into
 * contiguous ranges; each shard samples and scores its range and stores every response (text,
 * mean token entropy, length, finish), its tokens' entropy counts and the reward options its
 * policy came with. The merge groups the responses by problem, grades and clusters them with
 * those options and writes the three files exactly as one unsharded run does.
 *
 * @module
 */

import { defineStage, type Shard, type StageContext } from "../pipeline/stage.ts";
import type { ProblemRow } from "../data/rows.ts";
import { reward, type RewardOptions } from "../data/reward.ts";
import { DEFAULT_GRADER_MODE, graderFor } from "../data/grade/modes.ts";
import { semanticEntropy } from "./_rl/semantic_entropy.ts";
import { estimateScore } from "./_estimate.ts";

/** The config slice this stage reads. */
export type ScoreConfig = {
  score: {
    /** Responses M per problem. */
    samples: number;
    /** Sampling temperature. */
    temperature: number;
    /** Nucleus mass (1 = off). */
    topP: number;
    /** Response token limit. */
    maxTokens: number;
    /** Seed of the sampling streams. */
    seed: number;
    /** Requests per generation batch. */
    batchSize: number;
  };
  /** Answer equivalence (data/grade/modes.ts), for the reward and for clustering. */
  grader: { mode: string };
};

/** Bins of the SE histogram, in nats (ln 8 ≈ 2.08 is the maximum for M = 8). */
const SE_BIN = 0.1;
/** Bins of the token-entropy histogram (log-spaced upper edges, nats). */
const TOKEN_ENTROPY_EDGES = Array.from({ length: 41 }, (_, i) => 10 ** (-6 + i * 0.175));

export const score = defineStage<ScoreConfig>({
  name: "score",
  module: import.meta.url,
  doc: "Semantic entropy of each training problem: M sampled answers clustered by the grader.",
  upstream: ["dataset", "base"],
  configKeys: ["score", "grader"],
  engine: true,
  estimate: estimateScore,
  async run(ctx) {
    const rows = await trainRows(ctx);
    await writeScore(ctx, rows, await sampleResponses(ctx, rows));
  },
  // Shards split the (problem, sample) requests; the merge clusters each problem's answers.
  shards: {
    count: "score.shards",
    async run(ctx, shard) {
      const part = await sampleResponses(ctx, await trainRows(ctx), shard);
      await Deno.writeTextFile(
        `${ctx.outDir}/${SHARD_RESPONSES}`,
        part.responses.map((r) => JSON.stringify(r) + "\n").join(""),
      );
      await Deno.writeTextFile(
        `${ctx.outDir}/${SHARD_TOKEN_COUNTS}`,
        JSON.stringify(part.tokenCounts) + "\n",
      );
      await Deno.writeTextFile(`${ctx.outDir}/${SHARD_REWARD}`, JSON.stringify(part.reward) + "\n");
    },
    async merge(ctx, shards) {
      const parts: Sampled[] = [];
      for (const shard of shards) {
        const text = await shard.readText(SHARD_RESPONSES);
        parts.push({
          responses: text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line)),
          tokenCounts: await shard.readJson<number[]>(SHARD_TOKEN_COUNTS),
          reward: await shard.readJson<RewardOptions | null>(SHARD_REWARD),
        });
      }
      await writeScore(ctx, await trainRows(ctx), {
        responses: parts.flatMap((part) => part.responses),
        tokenCounts: parts.reduce(
          (sum, part) => sum.map((n, i) => n + part.tokenCounts[i]),
          new Array(TOKEN_ENTROPY_EDGES.length + 1).fill(0),
        ),
        reward: parts.find((part) => part.reward !== null)?.reward ?? null,
      });
    },
  },
});

/** A shard's responses, one JSON line per request of its range ({@link SampledResponse}). */
const SHARD_RESPONSES = "responses.jsonl";
/** A shard's token-entropy histogram counts (bins of {@link TOKEN_ENTROPY_EDGES}). */
const SHARD_TOKEN_COUNTS = "token_entropy_counts.json";
/** The reward options a shard's policy came with (null for a shard with no requests). */
const SHARD_REWARD = "reward.json";

/** One sampled response: what clustering and the records need from it. */
interface SampledResponse {
  /** Index of the problem in train.jsonl. */
  problem: number;
  /** Sample index j within the problem. */
  sample: number;
  /** Decoded response. */
  text: string;
  /** Mean entropy of its tokens (nats). */
  tokenEntropy: number;
  /** Length in tokens. */
  length: number;
  /** Why it ended. */
  finish: string;
}

/**
 * Responses of a run of requests, in request order, the entropy histogram of their tokens, and
 * how the policy's responses are graded (null when there were no requests).
 */
interface Sampled {
  responses: SampledResponse[];
  tokenCounts: number[];
  reward: RewardOptions | null;
}

type ScoreContext = StageContext<ScoreConfig>;

async function trainRows(ctx: ScoreContext): Promise<ProblemRow[]> {
  return (await ctx.input("dataset").readText("train.jsonl")).trim().split("\n")
    .map((line) => JSON.parse(line) as ProblemRow);
}

/**
 * Sample the requests (problem p, sample j) in p-major order, all of them or a shard's range,
 * and score each response's token entropies.
 */
async function sampleResponses(
  ctx: ScoreContext,
  rows: ProblemRow[],
  shard?: Shard,
): Promise<Sampled> {
  const s = ctx.config.score;
  const total = rows.length * s.samples;
  const [start, end] = shard ? shard.range(total) : [0, total];
  const tokenHistogram = new Array(TOKEN_ENTROPY_EDGES.length + 1).fill(0);
  if (start === end) return { responses: [], tokenCounts: tokenHistogram, reward: null };
  const { loadStagePolicy } = await import("./_policy_io.ts");
  const { generate } = await import("../kernels/sampling.ts");
  const { rolloutBatch, scoreResponses } = await import("../kernels/rollout.ts");

  // ── setup ───────────────────────────────────────────────────────────────────────────────
  // Training problems are scored as they will be trained on: the training prompt and reward.
  const bundle = await loadStagePolicy(ctx.input("base"), {
    device: ctx.device,
    threads: ctx.threads,
    use: "train",
    grader: ctx.config.grader.mode,
  });
  const prompts = new Map<number, number[]>();
  const promptOf = (p: number) => {
    if (!prompts.has(p)) prompts.set(p, bundle.promptIds(rows[p].problem));
    return prompts.get(p)!;
  };
  const units = Array.from({ length: end - start }, (_, k) => ({
    p: Math.floor((start + k) / s.samples),
    j: (start + k) % s.samples,
  }));
  const requests = units.map(({ p, j }) => ({
    prompt: promptOf(p),
    problem: rows[p].id,
    sample: j,
  }));

  // ── sample ──────────────────────────────────────────────────────────────────────────────
  const bar = ctx.progress(requests.length, "responses");
  let done = 0;
  const completions = await generate(bundle.policy, requests, {
    seed: `score/${s.seed}`,
    maxNewTokens: s.maxTokens,
    padId: bundle.tokenizer.padId,
    eosId: bundle.tokenizer.eosId,
    eosIds: bundle.stopIds,
    temperature: s.temperature,
    topP: s.topP,
    batchSize: s.batchSize,
    onProgress: (n) => {
      bar.tick(n - done);
      done = n;
    },
  });
  bar.done();

  // ── token entropies of the responses (one score pass, micro-batched) ───────────────────
  const rollout = rolloutBatch(
    requests.map((r) => [...r.prompt]),
    completions.map((c) => c.tokens),
    { padId: bundle.tokenizer.padId },
  );
  const scores = await scoreResponses(bundle.policy, rollout, {
    temperature: s.temperature,
    microBatchSize: s.batchSize,
  });
  const width = rollout.batch.length - 1;
  const meanEntropy = (i: number) => {
    let sum = 0, count = 0;
    for (let t = 0; t < width; t++) {
      if (rollout.responseMask[i * width + t] === 0) continue;
      const h = scores.entropy[i * width + t];
      sum += h;
      count++;
      tokenHistogram[binOf(h)]++;
    }
    return count === 0 ? 0 : sum / count;
  };
  const responses = completions.map((c, i) => ({
    problem: units[i].p,
    sample: units[i].j,
    text: bundle.responseText(c.tokens),
    tokenEntropy: meanEntropy(i),
    length: c.tokens.length,
    finish: c.finish,
  }));
  await bundle.policy.release();
  return { responses, tokenCounts: tokenHistogram, reward: bundle.reward };
}

/** Cluster each problem's answers and write the artifact from every response of every problem. */
async function writeScore(ctx: ScoreContext, rows: ProblemRow[], sampled: Sampled): Promise<void> {
  const s = ctx.config.score;
  const all = sampled.responses;
  if (all.length !== rows.length * s.samples) {
    throw new Error(
      `score: ${all.length} responses for ${rows.length} problems × ${s.samples} samples; ` +
        `expected ${rows.length * s.samples}`,
    );
  }
  // No responses at all only when there are no problems: nothing is graded then.
  const rewardOptions = sampled.reward ?? {};

  // ── cluster answers, entropy per problem ───────────────────────────────────────────────
  const records = rows.map((row, p) => {
    const own = all.slice(p * s.samples, (p + 1) * s.samples);
    return scoreRecord(row, own.map((r) => r.text), {
      reward: rewardOptions,
      tokenEntropies: own.map((r) => r.tokenEntropy),
      lengths: own.map((r) => r.length),
      finish: own.map((r) => r.finish),
    });
  });

  // ── artifact ────────────────────────────────────────────────────────────────────────────
  const histogram = new Map<number, number>();
  for (const r of records) {
    const bin = Math.floor(r.semanticEntropy / SE_BIN + 1e-9);
    histogram.set(bin, (histogram.get(bin) ?? 0) + 1);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const summary = {
    problems: records.length,
    samples: s.samples,
    temperature: s.temperature,
    topP: s.topP,
    maxTokens: s.maxTokens,
    unit: "nats",
    clustering: "grader equality of extracted answers; unparsable answers form one cluster",
    grader: ctx.config.grader.mode,
    meanSemanticEntropy: round(mean(records.map((r) => r.semanticEntropy))),
    zeroEntropyShare: round(
      records.filter((r) => r.semanticEntropy === 0).length / records.length,
    ),
    meanAccuracy: round(mean(records.map((r) => r.accuracy))),
    meanTokenEntropy: round(mean(records.map((r) => r.meanTokenEntropy))),
    histogram: [...histogram].sort((a, b) => a[0] - b[0]).map(([bin, count]) => ({
      from: round(bin * SE_BIN),
      to: round((bin + 1) * SE_BIN),
      count,
    })),
  };
  ctx.log.info(
    `${records.length} problems × ${s.samples}: mean SE ${summary.meanSemanticEntropy} nats, ` +
      `accuracy ${(100 * summary.meanAccuracy).toFixed(1)} %`,
  );
  ctx.metrics.summary({
    meanSemanticEntropy: summary.meanSemanticEntropy,
    meanAccuracy: summary.meanAccuracy,
    meanTokenEntropy: summary.meanTokenEntropy,
  });
  await Deno.writeTextFile(
    `${ctx.outDir}/problems.jsonl`,
    records.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  await Deno.writeTextFile(`${ctx.outDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  await Deno.writeTextFile(
    `${ctx.outDir}/token_entropy.json`,
    JSON.stringify({ edges: TOKEN_ENTROPY_EDGES.map(round), counts: sampled.tokenCounts }) + "\n",
  );
}

/** Per-response extras of {@link scoreRecord}. */
export interface ScoreRecordOptions {
  /** How answers are extracted and graded (the reward's extractor and grader mode). */
  reward: RewardOptions;
  /** Mean token entropy of each response (nats). */
  tokenEntropies?: readonly number[];
  /** Response lengths in tokens. */
  lengths?: readonly number[];
  /** Why each response ended. */
  finish?: readonly string[];
}

/**
 * One problem's record: its responses' extracted answers, the answer clusters (grader
 * equality; every unparsable answer in one cluster), the semantic entropy in nats and the
 * accuracy.
 *
 * @param row The problem.
 * @param responses Its M decoded responses.
 * @param options Extraction and per-response extras.
 * @returns The record written to `problems.jsonl`.
 * @example
 * ```ts
 * import { scoreRecord } from "./score.ts";
 * import { TINY_AIME_EXTRACTION } from "../data/extract.ts";
 * const row = { id: "p", problem: "2+2=?", answer: "4", solution: null, difficulty: null };
 * const r = scoreRecord(row, ["#### 4", "#### 4", "#### 5", "no answer"], {
 *   reward: { extraction: TINY_AIME_EXTRACTION },
 * });
 * r.clusters; // [2, 1, 1]
 * ```
 */
export function scoreRecord(
  row: ProblemRow,
  responses: readonly string[],
  options: ScoreRecordOptions,
) {
  const graded = responses.map((text) => reward(text, row.answer, options.reward));
  const r = options.reward;
  const equal = r.equal ?? graderFor(r.mode ?? DEFAULT_GRADER_MODE, r.grade);
  const se = semanticEntropy(graded.map((g) => g.answer), equal);
  const M = responses.length;
  const entropies = options.tokenEntropies ?? [];
  return {
    id: row.id,
    answer: row.answer,
    answers: graded.map((g) => g.answer),
    clusters: se.clusters,
    semanticEntropy: round(se.entropy),
    accuracy: graded.filter((g) => g.reward > 0).length / M,
    meanTokenEntropy: round(entropies.reduce((a, b) => a + b, 0) / Math.max(entropies.length, 1)),
    lengths: options.lengths ?? [],
    finish: options.finish ?? [],
  };
}

/** Index of the token-entropy bin holding h (the last bin is open-ended). */
function binOf(h: number): number {
  let i = 0;
  while (i < TOKEN_ENTROPY_EDGES.length && h > TOKEN_ENTROPY_EDGES[i]) i++;
  return i;
}

/** Six significant decimals, so artifacts stay readable and stable. */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
