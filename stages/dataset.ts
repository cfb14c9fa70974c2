/**
 * Stage `dataset`: the training problems and the held-out eval sets of a run, as JSONL.
 *
 * Produces `train.jsonl` and `eval/<set>.jsonl` (one `ProblemRow` per line, the same shape for
 * the built-in task and for registered benchmarks) and `summary.json` (row counts, difficulty
 * histogram, sources). Every later stage reads problems from here, never from the generator or
 * the download folder directly, so the artifact pins exactly which problems a run saw.
 *
 * @module
 */

import type { TinyAimeKnobs } from "../data/tiny_aime/families.ts";
import { defineStage } from "../pipeline/stage.ts";

/** The config slice this stage reads (a type alias: stage lists need an index signature). */
export type DatasetConfig = {
  data: {
    /** "aime-style" (built-in) or a registered training set such as math_train. */
    task: string;
    /** Generator seed of the built-in splits. */
    seed: number;
    /** Training problems kept (the first N of the split). */
    trainProblems: number;
    /** Problems per built-in eval set. */
    evalProblems: number;
    /** Eval sets: built-in (tiny-aime24, tiny-aime25) or registered benchmark names. */
    evalSets: string[];
    /** Folder of fetched datasets. */
    dir: string;
    /** Check registered files' sha256 and row counts against the registry. */
    verify: boolean;
    /** Difficulty knobs of the built-in task. */
    tinyAime: TinyAimeKnobs;
  };
};

/** The built-in task's training split. */
const BUILTIN_TRAIN = "tiny-aime-train";

export const dataset = defineStage<DatasetConfig>({
  name: "dataset",
  module: import.meta.url,
  doc: "Training problems and held-out eval sets (built-in tiny-AIME or registered benchmarks).",
  upstream: [],
  configKeys: ["data"],
  async run(ctx) {
    const { loadDataset } = await import("../data/load_dataset.ts");
    const data = ctx.config.data;
    const trainName = data.task === "aime-style" ? BUILTIN_TRAIN : data.task;
    // Seed, size and knobs shape the built-in splits; dataDir and verify apply to registered files.
    const load = (name: string, size: number) =>
      loadDataset(name, {
        seed: data.seed,
        size,
        knobs: data.tinyAime,
        dataDir: data.dir,
        verify: data.verify,
      });

    // ── training problems ───────────────────────────────────────────────────────────────────
    const train = await load(trainName, data.trainProblems);
    if (train.rows.length < data.trainProblems) {
      throw new Error(
        `data.trainProblems is ${data.trainProblems}, but ${trainName} has only ` +
          `${train.rows.length} rows`,
      );
    }
    const trainRows = train.rows.slice(0, data.trainProblems);
    await writeJsonl(`${ctx.outDir}/train.jsonl`, trainRows);

    // ── eval sets ───────────────────────────────────────────────────────────────────────────
    await Deno.mkdir(`${ctx.outDir}/eval`);
    const evalSummary: Record<string, { rows: number; source: string }> = {};
    const bar = ctx.progress(data.evalSets.length, "eval sets");
    for (const name of data.evalSets) {
      const set = await load(name, data.evalProblems);
      await writeJsonl(`${ctx.outDir}/eval/${name}.jsonl`, set.rows);
      evalSummary[name] = { rows: set.rows.length, source: set.source };
      bar.tick();
    }

    const levels: Record<string, number> = {};
    for (const row of trainRows) {
      const level = String(row.difficulty?.level ?? "unknown");
      levels[level] = (levels[level] ?? 0) + 1;
    }
    const summary = {
      train: { name: trainName, rows: trainRows.length, source: train.source, levels },
      eval: evalSummary,
      verified: data.verify,
    };
    ctx.log.info(
      `train ${trainName}: ${trainRows.length} rows; eval: ` +
        Object.entries(evalSummary).map(([n, s]) => `${n} ${s.rows}`).join(", "),
    );
    ctx.metrics.summary({ trainRows: trainRows.length, evalSets: data.evalSets.length });
    await Deno.writeTextFile(`${ctx.outDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  },
});

async function writeJsonl(path: string, rows: readonly unknown[]): Promise<void> {
  await Deno.writeTextFile(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
}
