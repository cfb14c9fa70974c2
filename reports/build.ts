/**
 * From a run's inputs to the report as data: tables (paper form, greedy, paired), figure specs,
 * provenance and the list of what is missing. Pure apart from nothing: rendering and files are
 * {@link writeReport}'s job, so the same model feeds the `report` stage and each published run
 * page.
 *
 * @example
 * ```ts ignore
 * import { buildReport } from "./build.ts";
 * import { loadInputs } from "./inputs.ts";
 * const report = buildReport(await loadInputs(artifacts, config), { machine, tools });
 * report.tables.map((t) => t.id); // ["pass_at_k", "avg_at_k", "greedy"]
 * ```
 *
 * @module
 */

import type { LockFile, RunRecord } from "../pipeline/records.ts";
import type { Results } from "../stages/_rl/results.ts";
import { buildFigures, type Figure, type SkippedFigure } from "./figures.ts";
import type { ReportInputs } from "./inputs.ts";
import type { Machine } from "./machine.ts";
import { missingParts } from "./missing.ts";
import { pairedComparisons, type PairedRow } from "./paired.ts";
import { buildProvenance, type Provenance } from "./provenance.ts";
import { type PaperTable, paperTable } from "./tables.ts";

/** Title when the config has none. */
export const DEFAULT_TITLE = "SENT report";

/** The report as data. */
export interface Report {
  /** Page title (`report.title`). */
  title: string;
  /** What is missing (empty for a complete run). */
  missing: string[];
  /** Paper-form tables with rows: Pass@k, Avg@k, greedy accuracy. */
  tables: PaperTable[];
  /** Paired comparisons against GRPO and the base (largest k). */
  paired: PairedRow[];
  /** Figures in page order. */
  figures: Figure[];
  /** Figures that could not be drawn. */
  skipped: SkippedFigure[];
  /** Provenance. */
  provenance: Provenance;
  /** The results behind the tables, copied into the report as they are. */
  results: Results | null;
  /** Which figure files to render: `svg`, `png`; `html` makes the page's figures interactive. */
  formats: string[];
}

/** Options for {@link buildReport}. */
export interface BuildOptions {
  /** The machine building the report. */
  machine?: Machine | null;
  /** Versions of the report's packages. */
  tools?: Record<string, string>;
  /** A run page's record. */
  run?: RunRecord;
  /** Whether the config was rebuilt from the stages' slices. */
  configFromSlices?: boolean;
  /** The store's lock file (run pages). */
  lock?: LockFile | null;
  /** Extra lines for the missing list (e.g. artifacts removed from the store). */
  alsoMissing?: readonly string[];
}

/** Formats when the config does not say: every one. */
const ALL_FORMATS = ["html", "svg", "png"];

/**
 * Build the report model.
 *
 * @param inputs The run's inputs.
 * @param options Machine, tools, run record.
 * @returns The model.
 */
export function buildReport(inputs: ReportInputs, options: BuildOptions = {}): Report {
  const report = inputs.config.report as { title?: string; formats?: string[] } | undefined;
  const methods = (inputs.config.train as { methods?: string[] } | undefined)?.methods ?? [];
  const sets = (inputs.config.data as { evalSets?: string[] } | undefined)?.evalSets ?? [];
  const results = inputs.results;
  const tables = results === null ? [] : (["pass@k", "avg@k", "greedy"] as const)
    .map((metric) => paperTable(results, metric, { methods, sets }))
    .filter((t) => t.rows.length > 0);
  const { figures, skipped } = buildFigures(inputs);
  return {
    title: report?.title || DEFAULT_TITLE,
    missing: [...(options.alsoMissing ?? []), ...missingParts(inputs, options.run)],
    tables,
    paired: results === null ? [] : pairedComparisons(results, { methods }),
    figures,
    skipped,
    provenance: buildProvenance(inputs, options),
    results,
    formats: report?.formats ?? ALL_FORMATS,
  };
}
