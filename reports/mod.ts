/**
 * Reports: from a run's artifacts to figures, paper-style tables with paired statistics, and
 * provenance, as an offline folder (the `report` stage) or a static site of a store's runs
 * (`deno task publish`).
 *
 * The flow: {@link loadInputs} reads the artifacts (forgiving: a partial run still loads),
 * {@link buildReport} turns them into the report as data (tables through arquero, Vega-Lite specs,
 * bootstrap intervals, provenance, what is missing), and {@link writeReport} renders it (SVG
 * through Vega's headless view, PNG through resvg with the DejaVu fonts, the HTML page);
 * {@link publishSite} does the same for every recorded run of a store.
 *
 * @example
 * ```ts ignore
 * import { buildReport, loadInputs, writeReport } from "./mod.ts";
 * const inputs = await loadInputs(artifacts, config);
 * const { files } = await writeReport(buildReport(inputs), "/tmp/report");
 * ```
 *
 * @module
 */

export { bootstrapMean, type BootstrapOptions, type Interval } from "./bootstrap.ts";
export { type BuildOptions, buildReport, type Report } from "./build.ts";
export { buildFigures, type Figure, FIGURES, type SkippedFigure } from "./figures.ts";
export { type ArtifactRef, loadInputs, type ReportInputs } from "./inputs.ts";
export { missingParts } from "./missing.ts";
export { pairedComparisons, pairedDifferences, type PairedRow } from "./paired.ts";
export { type Published, publishSite } from "./publish.ts";
export { type Mark, rankMarks } from "./rank.ts";
export { compileSpec, renderPng, renderSvg } from "./render.ts";
export { type PaperTable, paperTable } from "./tables.ts";
export { tableHtml, tableMarkdown } from "./table_text.ts";
export { writeReport, type Written } from "./write.ts";
