/**
 * The report's tables as arquero frames: every number on the page comes out of one of these.
 *
 * - {@link seedFrame}: one row per (eval set, policy, seed, metric, k) from `results.json`,
 *   metric `pass@k` / `avg@k` (percent), plus metric `greedy` (k = 0) where a seed records it.
 * - {@link summarizeSeeds}: mean and standard error over seeds of any frame with a `value`
 *   column, grouped by the columns named. SE = sample std (n − 1) / √n, 0 for one seed (no
 *   spread can be measured), the same rule as `results.json`'s `se`.
 * - {@link stepFrame} and {@link curveBands}: per-step training metrics of every
 *   `train[method, seed]` node, and their mean ± SE across seeds per (method, step). The bands
 *   are computed here, not by Vega's own bootstrap, so a figure renders the same every time.
 *
 * @example
 * ```ts ignore
 * import { curveBands, stepFrame } from "./frames.ts";
 * const bands = curveBands(stepFrame(runs, "entropy"));
 * bands.objects(); // [{ method: "grpo", step: 0, mean: 3.1, se: 0.02, lo: 3.08, hi: 3.12, n: 2 }, …]
 * ```
 *
 * @module
 */

import * as aq from "arquero";
import type { ColumnTable } from "arquero";
import type { Results } from "../stages/_rl/results.ts";
import type { TrainRun } from "./inputs.ts";

const op = aq.op;

/** Metrics of {@link seedFrame}: the two of `results.json` and greedy accuracy. */
export const SEED_METRICS = ["pass@k", "avg@k", "greedy"] as const;

/** A metric of {@link seedFrame}. */
export type SeedMetric = (typeof SEED_METRICS)[number];

/** One row of {@link seedFrame}. */
export interface SeedRow {
  /** Eval set. */
  set: string;
  /** Policy (`base`, `base@t0.5`, a method). */
  policy: string;
  /** Seed. */
  seed: number;
  /** Metric. */
  metric: SeedMetric;
  /** k (0 for greedy). */
  k: number;
  /** Percent. */
  value: number;
}

/**
 * Every per-seed number of `results.json` in long form.
 *
 * @param results The parsed `results.json`.
 * @returns Columns set, policy, seed, metric, k, value; in file order.
 */
export function seedFrame(results: Results): ColumnTable {
  const rows: SeedRow[] = [];
  for (const [set, policies] of Object.entries(results.sets)) {
    for (const [policy, entry] of Object.entries(policies)) {
      for (const [seedKey, seed] of Object.entries(entry.seeds)) {
        const base = { set, policy, seed: Number(seedKey) };
        for (const metric of ["pass@k", "avg@k"] as const) {
          for (const [k, value] of Object.entries(seed[metric])) {
            rows.push({ ...base, metric, k: Number(k), value });
          }
        }
        if (typeof seed.greedy === "number") {
          rows.push({ ...base, metric: "greedy", k: 0, value: seed.greedy });
        }
      }
    }
  }
  return aq.from(rows.length > 0 ? rows : [], ["set", "policy", "seed", "metric", "k", "value"]);
}

/**
 * Mean, standard error and seed count of `value`, per group.
 *
 * @param frame A frame with a numeric `value` column.
 * @param by The grouping columns.
 * @returns Columns `by…`, mean, se, seeds (the number of values).
 */
export function summarizeSeeds(frame: ColumnTable, by: readonly string[]): ColumnTable {
  return frame
    .groupby(...by)
    .rollup({ mean: op.mean("value"), sd: op.stdev("value"), seeds: op.valid("value") })
    .derive({ se: (d: { seeds: number; sd: number }) => d.seeds > 1 ? d.sd / op.sqrt(d.seeds) : 0 })
    .select(...by, "mean", "se", "seeds");
}

/**
 * One training metric per step of every run, in long form; rows whose value is not a finite
 * number are left out.
 *
 * @param runs The train nodes' metrics.
 * @param metric A column of `metrics.jsonl` (e.g. `entropy`, `loss/pg_clipfrac`).
 * @returns Columns method, seed, step, value.
 */
export function stepFrame(runs: readonly TrainRun[], metric: string): ColumnTable {
  const rows = runs.flatMap((run) =>
    run.rows.flatMap((row) => {
      const value = row[metric];
      const step = row.step;
      return typeof value === "number" && Number.isFinite(value) && typeof step === "number"
        ? [{ method: run.method, seed: run.seed, step, value }]
        : [];
    })
  );
  return aq.from(rows, ["method", "seed", "step", "value"]);
}

/**
 * Mean ± standard error across seeds per (method, step): the bands of the learning curves.
 *
 * @param steps A frame from {@link stepFrame}.
 * @returns Columns method, step, mean, se, lo = mean − se, hi = mean + se, n (seeds), sorted by
 *   method then step.
 */
export function curveBands(steps: ColumnTable): ColumnTable {
  return summarizeSeeds(steps, ["method", "step"])
    .derive({
      lo: (d: { mean: number; se: number }) => d.mean - d.se,
      hi: (d: { mean: number; se: number }) => d.mean + d.se,
    })
    .rename({ seeds: "n" })
    .orderby("method", "step");
}
