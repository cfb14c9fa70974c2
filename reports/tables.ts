/**
 * The paper's tables as data: Pass@k and Avg@k per benchmark × policy (one row per eval set and
 * k, one column per policy), and greedy accuracy in the same form (one row per eval set).
 *
 * - A cell is the mean over seeds ± its standard error (SE 0 and no ± for a single seed).
 * - In each row the best value among the base and the methods is marked `best` (bold) and the
 *   second `second` (underlined), ties shared ({@link rankMarks}). The lower-temperature base
 *   columns are references, set apart and never marked.
 * - The average row is the mean over the rows above, computed per seed and then averaged over
 *   the seeds that have every row (mean ± SE over those seeds), so it is what the paper's "Avg."
 *   row is and carries its own error bar. A column without such a seed shows no average.
 *
 * All the arithmetic goes through arquero ({@link seedFrame}, {@link summarizeSeeds}).
 *
 * @example
 * ```ts ignore
 * import { paperTable } from "./tables.ts";
 * const t = paperTable(results, "avg@k", { methods: ["grpo", "sent"], sets: ["tiny-aime24"] });
 * t.rows[0].cells[2]; // { mean: 27.92, se: 1.3, seeds: 3, mark: "best" }
 * ```
 *
 * @module
 */

import * as aq from "arquero";
import type { ColumnTable } from "arquero";
import type { Results } from "../stages/_rl/results.ts";
import { seedFrame, type SeedMetric, summarizeSeeds } from "./frames.ts";
import { type PolicyColumn, policyColumns } from "./policies.ts";
import { type Mark, rankMarks } from "./rank.ts";

/** One cell: mean ± SE over seeds, or empty. */
export interface TableCell {
  /** Mean over seeds (percent), or null when the policy has no value here. */
  mean: number | null;
  /** Standard error over seeds (0 for one seed). */
  se: number;
  /** Seeds behind the mean. */
  seeds: number;
  /** Best / second mark within the row (main columns only). */
  mark: Mark;
}

/** One row. */
export interface TableRow {
  /** Eval set (empty for the average row). */
  set: string;
  /** k (0 for greedy and for the average row). */
  k: number;
  /** Cells, one per column. */
  cells: TableCell[];
}

/** A paper-form table. */
export interface PaperTable {
  /** Stable id, used for file names (`pass_at_k`, `avg_at_k`, `greedy`). */
  id: string;
  /** Title, e.g. "Pass@k (%)". */
  title: string;
  /** The metric of every cell. */
  metric: SeedMetric;
  /** Columns: base and methods first, then the reference (lower-temperature base) columns. */
  columns: PolicyColumn[];
  /** One row per eval set and k. */
  rows: TableRow[];
  /** The average row, or null when there are no rows. */
  average: TableRow | null;
  /** Decimals printed. */
  digits: number;
}

/** Options for {@link paperTable}. */
export interface PaperTableOptions {
  /** `train.methods`, for the column order. */
  methods: readonly string[];
  /** `data.evalSets`, for the row order (sets not listed follow in file order). */
  sets: readonly string[];
  /** Decimals printed (default 2, as in the paper). */
  digits?: number;
}

const TITLES: Readonly<Record<SeedMetric, { id: string; title: string }>> = {
  "pass@k": { id: "pass_at_k", title: "Pass@k (%)" },
  "avg@k": { id: "avg_at_k", title: "Avg@k (%)" },
  greedy: { id: "greedy", title: "Greedy accuracy (%)" },
};

const EMPTY: TableCell = { mean: null, se: 0, seeds: 0, mark: null };

/**
 * Build one paper-form table from `results.json`.
 *
 * @param results The parsed results.
 * @param metric `pass@k`, `avg@k` or `greedy`.
 * @param options Column and row order, decimals.
 * @returns The table (rows may be empty when the metric has no values).
 */
export function paperTable(
  results: Results,
  metric: SeedMetric,
  options: PaperTableOptions,
): PaperTable {
  const digits = options.digits ?? 2;
  const frame = seedFrame(results).params({ metric }).filter((d: { metric: string }, $: {
    metric: string;
  }) => d.metric === $.metric);
  const columns = policyColumns(presentPolicies(results), options.methods);
  const rowKeys = orderedRows(frame, options.sets);
  const cells = indexCells(summarizeSeeds(frame, ["set", "k", "policy"]), ["set", "k", "policy"]);
  const rows = rowKeys.map(({ set, k }) =>
    markRow(
      {
        set,
        k,
        cells: columns.map((c) => cells.get(`${set}\u0000${k}\u0000${c.policy}`) ?? EMPTY),
      },
      columns,
      digits,
    )
  );
  return {
    ...TITLES[metric],
    metric,
    columns,
    rows,
    average: rows.length === 0 ? null : averageRow(frame, rowKeys.length, columns, digits),
    digits,
  };
}

/** Policies in the order the file first names them. */
function presentPolicies(results: Results): string[] {
  const seen = new Set<string>();
  for (const policies of Object.values(results.sets)) {
    for (const policy of Object.keys(policies)) seen.add(policy);
  }
  return [...seen];
}

/** (set, k) pairs: config sets first, then the rest; k ascending. */
function orderedRows(frame: ColumnTable, sets: readonly string[]): { set: string; k: number }[] {
  const pairs = frame.select("set", "k").dedupe().objects() as { set: string; k: number }[];
  const present = [...new Set(pairs.map((p) => p.set))];
  const order = [
    ...sets.filter((s) => present.includes(s)),
    ...present.filter((s) => !sets.includes(s)),
  ];
  return order.flatMap((set) =>
    pairs.filter((p) => p.set === set).map((p) => p.k).sort((a, b) => a - b).map((k) => ({
      set,
      k,
    }))
  );
}

/** Summary rows keyed by the joined values of `by`. */
function indexCells(summary: ColumnTable, by: readonly string[]): Map<string, TableCell> {
  const map = new Map<string, TableCell>();
  for (const row of summary.objects() as Record<string, unknown>[]) {
    map.set(by.map((c) => String(row[c])).join("\u0000"), {
      mean: row.mean as number,
      se: row.se as number,
      seeds: row.seeds as number,
      mark: null,
    });
  }
  return map;
}

/** Mark best / second among the main columns. */
function markRow(row: TableRow, columns: readonly PolicyColumn[], digits: number): TableRow {
  const main = columns.map((c, i) => (c.group === "main" ? i : -1)).filter((i) => i >= 0);
  const marks = rankMarks(main.map((i) => row.cells[i].mean), { digits });
  const cells = row.cells.map((cell) => ({ ...cell, mark: null as Mark }));
  main.forEach((i, j) => (cells[i].mark = marks[j]));
  return { ...row, cells };
}

/**
 * The average row: per (policy, seed) the mean over the table's rows, kept only for seeds that
 * have all of them; then mean ± SE over those seeds.
 */
function averageRow(
  frame: ColumnTable,
  rowCount: number,
  columns: readonly PolicyColumn[],
  digits: number,
): TableRow {
  const perSeed = frame
    .groupby("policy", "seed")
    .rollup({ value: aq.op.mean("value"), rows: aq.op.count() })
    .params({ rowCount })
    .filter((d: { rows: number }, $: { rowCount: number }) => d.rows === $.rowCount);
  const cells = indexCells(summarizeSeeds(perSeed, ["policy"]), ["policy"]);
  return markRow(
    { set: "", k: 0, cells: columns.map((c) => cells.get(c.policy) ?? EMPTY) },
    columns,
    digits,
  );
}
