/**
 * A 22-node DAG for the `pipeline.cached_reproduce_s` benchmark: prepare → fit[method,seed]
 * (2 × 5) → score[method,seed] (2 × 5) → collect. The stages do almost nothing; the benchmark
 * measures the engine around them.
 *
 * @module
 */

import { defineStage, type Stage } from "./stage.ts";

const METHODS = ["grpo", "sent"];
const SEEDS = [1, 2, 3, 4, 5];

const prepare = defineStage<{ data: { seed: number } }>({
  name: "prepare",
  module: import.meta.url,
  doc: "Seeded values.",
  configKeys: ["data.seed"],
  async run(ctx) {
    const values = Array.from({ length: 100 }, () => ctx.rng.int(1000));
    await Deno.writeTextFile(`${ctx.outDir}/values.json`, JSON.stringify(values));
  },
});

const fit = defineStage({
  name: "fit",
  module: import.meta.url,
  doc: "Mean of the values plus seeded noise.",
  upstream: ["prepare"],
  params: { method: METHODS, seed: SEEDS },
  async run(ctx) {
    const values = await ctx.input("prepare").readJson<number[]>("values.json");
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    await Deno.writeTextFile(
      `${ctx.outDir}/fit.json`,
      JSON.stringify({ mean: mean + ctx.rng.normal() }),
    );
  },
});

const score = defineStage({
  name: "score",
  module: import.meta.url,
  doc: "Score of each fit.",
  upstream: ["fit"],
  params: { method: METHODS, seed: SEEDS },
  async run(ctx) {
    const { mean } = await ctx.input("fit").readJson<{ mean: number }>("fit.json");
    await Deno.writeTextFile(`${ctx.outDir}/score.json`, JSON.stringify({ score: mean / 1000 }));
  },
});

const collect = defineStage({
  name: "collect",
  module: import.meta.url,
  doc: "All scores.",
  upstream: ["score"],
  async run(ctx) {
    const rows = await Promise.all(ctx.upstream.score.map((a) => a.readJson("score.json")));
    await Deno.writeTextFile(`${ctx.outDir}/scores.json`, JSON.stringify(rows));
  },
});

/** The benchmark's stages. */
export const stages: readonly Stage[] = [prepare, fit, score, collect];
