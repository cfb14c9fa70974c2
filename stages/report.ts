/**
 * Stage `report`: the run's report, at the end of the DAG — figures, paper-style tables with
 * paired statistics, and provenance, as a folder that works offline (`index.html`).
 *
 * Reads every artifact of the data flow: `results.json` for the tables and the Pass@k figure,
 * the per-step metrics of each `train[method, seed]` for the learning curves, `score` for the
 * semantic-entropy and token-entropy distributions, `curriculum` for the cut points, `base` for
 * the warm-up loss, and the manifests of all of them (dataset and evaluate included) for the
 * provenance: cache keys, durations, versions, execution provider.
 *
 * Its config slice is the whole resolved config, which the page shows; `report.title` names
 * the page and `report.formats` picks the figure files (`svg`, `png`) and whether the page
 * draws its figures with Vega-Embed (`html`) or shows the SVG files. The layout of the folder
 * is in `reports/write.ts`. Same artifacts and config ⇒ same bytes (the one exception is the
 * line naming the machine that built the report).
 *
 * @module
 */

import { defineStage } from "../pipeline/stage.ts";

export const report = defineStage<Record<string, unknown>>({
  name: "report",
  module: import.meta.url,
  doc: "index.html: figures, paper-style tables with paired bootstrap intervals, provenance.",
  upstream: ["dataset", "base", "score", "curriculum", "train", "evaluate", "results"],
  configSlice: (config) => config,
  async run(ctx) {
    const { buildReport } = await import("../reports/build.ts");
    const { loadInputs } = await import("../reports/inputs.ts");
    const { describeMachine } = await import("../reports/machine.ts");
    const { reportToolVersions } = await import("../reports/tool_versions.ts");
    const { writeReport } = await import("../reports/write.ts");

    // ── inputs ──────────────────────────────────────────────────────────────────────────────
    const artifacts = Object.values(ctx.upstream).flat();
    const inputs = await loadInputs(artifacts, ctx.config);
    for (const problem of inputs.problems) ctx.log.warn(problem);

    // ── the report ──────────────────────────────────────────────────────────────────────────
    const model = buildReport(inputs, {
      machine: describeMachine(),
      tools: await reportToolVersions(),
    });
    const bar = ctx.progress(model.figures.length, "figures");
    const results = artifacts.find((a) => a.stage === "results");
    const written = await writeReport(model, ctx.outDir, {
      resultsFile: results ? results.path("results.json") : null,
      onFigure: () => bar.tick(),
    });
    bar.done();
    for (const warning of written.warnings) ctx.log.warn(warning);
    for (const line of model.missing) ctx.log.warn(`missing: ${line}`);
    ctx.metrics.summary({
      figures: model.figures.length,
      skippedFigures: model.skipped.map((s) => s.id),
      tables: model.tables.map((t) => t.id),
      pairedComparisons: model.paired.length,
      missing: model.missing.length,
      files: written.files.length,
    });
  },
});
