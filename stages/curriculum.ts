/**
 * Stage `curriculum`: the training problems ordered by semantic entropy and cut into buckets
 * that curriculum methods train in order, lowest entropy first.
 *
 * Reads `problems.jsonl` of `score` (one record per training problem with its semantic entropy
 * in nats). Sorts ascending by entropy, breaking ties with a shuffle seeded by
 * `curriculum.seed` (many problems share SE = 0, so the tie order decides which of them land in
 * the first bucket), then splits into `curriculum.buckets` buckets: equal-count quantiles (two
 * buckets = a median split) or the cut points in `curriculum.thresholds`.
 *
 * Produces `buckets.json` (`{ buckets: [[id, …], …], cuts: [SE at each cut], stats: [per-bucket
 * count and min / max / mean SE] }`) and `summary.json` (sizes, cuts, stats).
 *
 * @module
 */

import { defineStage } from "../pipeline/stage.ts";

/** The config slice this stage reads. */
export type CurriculumConfig = {
  curriculum: {
    /** Buckets S, trained in order. */
    buckets: number;
    /** "quantiles" (equal counts) or "thresholds" (SE cut points). */
    split: "quantiles" | "thresholds";
    /** S − 1 ascending cut points in nats (thresholds split). */
    thresholds: number[];
    /** Seed of the tie-breaking shuffle. */
    seed: number;
  };
};

/** One problem as the score stage records it (the fields this stage reads). */
interface ScoredProblem {
  id: string;
  semanticEntropy: number;
}

export const curriculum = defineStage<CurriculumConfig>({
  name: "curriculum",
  module: import.meta.url,
  doc: "Training problems ordered by semantic entropy, split into buckets (low SE first).",
  upstream: ["score"],
  configKeys: [
    "curriculum.buckets",
    "curriculum.split",
    "curriculum.thresholds",
    "curriculum.seed",
  ],
  async run(ctx) {
    const { curriculumSplit } = await import("./_rl/curriculum_split.ts");
    const c = ctx.config.curriculum;
    const text = await ctx.input("score").readText("problems.jsonl");
    const scored = text.trim().split("\n").map((line) => JSON.parse(line) as ScoredProblem);
    const split = curriculumSplit(
      scored.map((p) => ({ id: p.id, se: p.semanticEntropy })),
      c.split === "thresholds"
        ? { split: c.split, thresholds: c.thresholds, seed: c.seed }
        : { split: c.split, buckets: c.buckets, seed: c.seed },
    );
    const sizes = split.buckets.map((b) => b.length);
    ctx.log.info(`${scored.length} problems → buckets of ${sizes.join(" + ")}`);
    ctx.metrics.summary({ problems: scored.length, bucketSizes: sizes });
    await Deno.writeTextFile(
      `${ctx.outDir}/buckets.json`,
      JSON.stringify({ buckets: split.buckets, cuts: split.cuts, stats: split.stats }) + "\n",
    );
    const summary = { problems: scored.length, sizes, cuts: split.cuts, stats: split.stats };
    await Deno.writeTextFile(`${ctx.outDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  },
});
