/**
 * Stage `results`: every `evaluate[policy, seed]` node gathered into one `results.json`
 * (schema `sent-results/1`), with the mean and standard error over seeds of every Pass@k and
 * Avg@k. It is the one contract between evaluation and the report, and what outside tools read.
 *
 * Also writes `table.md`: Avg@k and Pass@k of the largest k per eval set and policy, mean ± SE
 * over seeds, greedy accuracy beside them, for a quick look in a terminal.
 *
 * @module
 */

import { defineStage } from "../pipeline/stage.ts";
import type { ResultEntry, Results, SeedResult } from "./_rl/results.ts";

/** The config slice this stage reads. */
export type ResultsConfig = { evaluate: { ks: number[] } };

/** One evaluate node's file (the fields read here). */
interface EvalFile {
  policy: string;
  seed: number;
  sets: Record<string, SeedResult & { greedy: number }>;
}

export const results = defineStage<ResultsConfig>({
  name: "results",
  module: import.meta.url,
  doc: "results.json: Pass@k / Avg@k per eval set × policy × seed, mean ± SE over seeds.",
  upstream: ["evaluate"],
  configKeys: ["evaluate.ks"],
  async run(ctx) {
    const { assembleResults } = await import("./_rl/results.ts");
    const ks = ctx.config.evaluate.ks;
    const entries: ResultEntry[] = [];
    for (const artifact of ctx.upstream.evaluate ?? []) {
      const file = await artifact.readJson<EvalFile>("eval.json");
      for (const [set, result] of Object.entries(file.sets)) {
        entries.push({ set, policy: file.policy, seed: file.seed, seedResult: result });
      }
    }
    const json = assembleResults(entries, ks);
    await Deno.writeTextFile(`${ctx.outDir}/results.json`, JSON.stringify(json, null, 2) + "\n");
    await Deno.writeTextFile(`${ctx.outDir}/table.md`, markdownTable(json, ks));
    ctx.metrics.summary({ sets: Object.keys(json.sets).length, nodes: entries.length });
  },
});

/** A terminal-sized Markdown table of the largest k. */
function markdownTable(json: Results, ks: number[]): string {
  const k = String(Math.max(...ks));
  const lines = [
    `| eval set | policy | Avg@${k} | Pass@${k} | greedy | seeds |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const pm = (mean: number, se: number) => `${mean.toFixed(2)} ± ${se.toFixed(2)}`;
  for (const [set, policies] of Object.entries(json.sets)) {
    for (const [policy, row] of Object.entries(policies)) {
      const seeds = Object.values(row.seeds);
      const greedy = seeds.reduce((a, s) => a + Number(s.greedy ?? 0), 0) / seeds.length;
      lines.push(
        `| ${set} | ${policy} | ${pm(row.mean["avg@k"][k], row.se["avg@k"][k])} | ` +
          `${pm(row.mean["pass@k"][k], row.se["pass@k"][k])} | ${greedy.toFixed(2)} | ` +
          `${seeds.length} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
