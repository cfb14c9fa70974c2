/**
 * Paper-form tables (reports/tables.ts, reports/table_text.ts) on a hand-made results.json
 * whose every cell is worked out below, ties included.
 */

import assert from "node:assert/strict";
import { assembleResults, type ResultEntry, seedResult } from "../../stages/_rl/results.ts";
import { paperTable } from "../../reports/tables.ts";
import { tableHtml, tableMarkdown } from "../../reports/table_text.ts";
import { fixtureResults } from "./_fixtures.ts";

const T = true, F = false;

/**
 * Set "s", n = 2, ks [1, 2], two problems:
 *   base       seeds 1, 2: p1 [T, F], p2 [F, F] → Avg@1 50, 50; Avg@2 25, 25
 *   grpo       seed 1: p1 [T, T], p2 [F, F]     → Avg@1 50;   Avg@2 50
 *              seed 2: p1 [T, F], p2 [F, F]     → Avg@1 50;   Avg@2 25
 *   sent       seed 1: p1 [T, T], p2 [T, F]     → Avg@1 100;  Avg@2 75
 *              seed 2: p1 [T, T], p2 [F, T]     → Avg@1 50;   Avg@2 75
 *   base@t0.5  seeds 1, 2: every sample right   → 100 everywhere (a reference: never marked)
 */
const SAMPLES: Record<string, Record<number, boolean[][]>> = {
  base: { 1: [[T, F], [F, F]], 2: [[T, F], [F, F]] },
  grpo: { 1: [[T, T], [F, F]], 2: [[T, F], [F, F]] },
  sent: { 1: [[T, T], [T, F]], 2: [[T, T], [F, T]] },
  "base@t0.5": { 1: [[T, T], [T, T]], 2: [[T, T], [T, T]] },
};

function handResults() {
  const entries: ResultEntry[] = [];
  for (const [policy, seeds] of Object.entries(SAMPLES)) {
    for (const [seed, problems] of Object.entries(seeds)) {
      const result = seedResult(
        problems.map((correct, p) => ({ id: `p${p + 1}`, correct, answers: correct.map(String) })),
        [1, 2],
      );
      const greedy = 100 * problems.filter((c) => c[0]).length / problems.length;
      entries.push({ set: "s", policy, seed: Number(seed), seedResult: { ...result, greedy } });
    }
  }
  return assembleResults(entries, [1, 2]);
}

const OPTIONS = { methods: ["grpo", "sent"], sets: ["s"] };

Deno.test("paperTable() orders columns base, methods in train.methods order, then the lower-temperature base apart", () => {
  const table = paperTable(handResults(), "avg@k", { methods: ["sent", "grpo"], sets: ["s"] });
  assert.deepEqual(
    table.columns.map((c) => [c.policy, c.label, c.group]),
    [
      ["base", "Base", "main"],
      ["sent", "SENT", "main"],
      ["grpo", "GRPO", "main"],
      ["base@t0.5", "Base, T = 0.5", "reference"],
    ],
  );
  assert.deepEqual(table.rows.map((r) => [r.set, r.k]), [["s", 1], ["s", 2]]);
});

Deno.test("paperTable() marks best and second per row among base and methods only, ties shared", () => {
  const table = paperTable(handResults(), "avg@k", OPTIONS);
  const view = (row: { cells: { mean: number | null; mark: string | null }[] }) =>
    row.cells.map((c) => [c.mean, c.mark]);
  // columns: base, grpo, sent, base@t0.5
  assert.deepEqual(view(table.rows[0]), [[50, "second"], [50, "second"], [75, "best"], [
    100,
    null,
  ]]);
  assert.deepEqual(view(table.rows[1]), [[25, null], [37.5, "second"], [75, "best"], [100, null]]);
});

Deno.test("paperTable() cells are mean ± SE over seeds and agree with results.json's own mean and se", () => {
  const results = handResults();
  for (const metric of ["pass@k", "avg@k"] as const) {
    const table = paperTable(results, metric, OPTIONS);
    for (const row of table.rows) {
      row.cells.forEach((cell, i) => {
        const policy = results.sets.s[table.columns[i].policy];
        assert.ok(Math.abs(cell.mean! - policy.mean[metric][String(row.k)]) < 1e-9);
        assert.ok(Math.abs(cell.se - policy.se[metric][String(row.k)]) < 1e-9);
        assert.equal(cell.seeds, 2);
      });
    }
  }
  // sent Avg@1: seeds 100 and 50 → mean 75, sample std 35.36, SE 35.36 / √2 = 25
  assert.ok(Math.abs(paperTable(results, "avg@k", OPTIONS).rows[0].cells[2].se - 25) < 1e-9);
});

Deno.test("paperTable() average row is the per-seed mean over the rows, then mean ± SE over seeds", () => {
  const avg = paperTable(handResults(), "avg@k", OPTIONS).average!;
  // base (50+25)/2 = 37.5 twice; grpo 50 and 37.5 → 43.75 ± 6.25; sent 87.5 and 62.5 → 75 ± 12.5
  const cells = avg.cells.map((c) => [c.mean, Number(c.se.toFixed(9)), c.mark]);
  assert.deepEqual(cells, [[37.5, 0, null], [43.75, 6.25, "second"], [75, 12.5, "best"], [
    100,
    0,
    null,
  ]]);
});

Deno.test("paperTable() averages only the seeds that have every row, and leaves an empty cell unmarked", () => {
  // grpo seed 2 drew one sample per problem: it has Avg@1 but no Avg@2 row.
  const entries: ResultEntry[] = [];
  const add = (policy: string, seed: number, problems: boolean[][]) =>
    entries.push({
      set: "s",
      policy,
      seed,
      seedResult: seedResult(
        problems.map((c, p) => ({ id: `p${p}`, correct: c, answers: c.map(String) })),
        [1, 2],
      ),
    });
  add("base", 1, [[T, F], [F, F]]);
  add("grpo", 1, [[T, T], [T, F]]); // Avg@1 100, Avg@2 75 → average 87.5
  add("grpo", 2, [[F], [F]]); // Avg@1 0, no Avg@2
  const results = assembleResults(entries, [1, 2]);
  const table = paperTable(results, "avg@k", { methods: ["grpo", "sent"], sets: ["s"] });
  assert.deepEqual(table.rows[0].cells.map((c) => [c.mean, c.seeds]), [[50, 1], [50, 2]]);
  assert.deepEqual(table.rows[1].cells.map((c) => [c.mean, c.seeds]), [[25, 1], [75, 1]]);
  assert.deepEqual(table.average!.cells.map((c) => [c.mean, c.seeds]), [[37.5, 1], [87.5, 1]]);
  // no sent column at all: a method with no results gets no column
  assert.equal(table.columns.some((c) => c.policy === "sent"), false);

  const partial = paperTable(fixtureResults({ drop: ["sent/1/set-b", "sent/2/set-b"] }), "avg@k", {
    methods: ["grpo", "sent"],
    sets: ["set-a", "set-b"],
  });
  const sent = partial.columns.findIndex((c) => c.policy === "sent");
  const setB = partial.rows.filter((r) => r.set === "set-b");
  assert.ok(setB.every((r) => r.cells[sent].mean === null && r.cells[sent].mark === null));
  assert.equal(partial.average!.cells[sent].mean, null);
});

Deno.test("tableMarkdown() and tableHtml() print bold best, underlined second, ± SE and the reference columns", () => {
  const table = paperTable(handResults(), "avg@k", OPTIONS);
  const md = tableMarkdown(table);
  assert.match(md, /^\*\*Avg@k \(%\)\*\*$/m);
  assert.match(md, /^\| bench \| k \| Base \| GRPO \| SENT \| Base, T = 0\.5 \(ref\.\) \|$/m);
  assert.match(
    md,
    /^\| s \| 1 \| <u>50\.00<\/u> ± 0\.00 \| <u>50\.00<\/u> ± 0\.00 \| \*\*75\.00\*\* ± 25\.00 \| 100\.00 ± 0\.00 \|$/m,
  );
  assert.match(
    md,
    /^\| \*\*Avg\.\*\* \| {2}\| 37\.50 ± 0\.00 \| <u>43\.75<\/u> ± 6\.25 \| \*\*75\.00\*\* ± 12\.50 \| 100\.00 ± 0\.00 \|$/m,
  );
  const html = tableHtml(table);
  assert.match(html, /<td class="best"><b>75\.00<\/b><span class="pm"> ± 25\.00<\/span><\/td>/);
  assert.match(html, /<td class="second"><u>50\.00<\/u>/);
  assert.match(
    html,
    /<th colspan="1" class="ref ref-start">base, lower temperature \(reference\)<\/th>/,
  );
  assert.match(html, /<td class="ref ref-start">100\.00/);
  assert.match(html, /<tr class="avg">/);

  const greedy = paperTable(handResults(), "greedy", OPTIONS);
  assert.deepEqual(greedy.rows.map((r) => [r.set, r.k]), [["s", 0]]);
  assert.match(
    tableMarkdown(greedy),
    /^\| bench \| Base \| GRPO \| SENT \| Base, T = 0\.5 \(ref\.\) \|$/m,
  );
});
