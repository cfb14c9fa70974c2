/**
 * Figure specs (reports/figures.ts and the spec builders): every spec compiles with vega-lite
 * without a warning and parses with vega — those of the test preset's real report and those
 * built from the fixture — and renders to SVG and PNG.
 */

import assert from "node:assert/strict";
import type { TopLevelSpec } from "vega-lite";
import { buildFigures, FIGURES } from "../../reports/figures.ts";
import { histogramQuantile } from "../../reports/histogram_quantile.ts";
import { compileSpec, parseVega, renderPng, renderSvg } from "../../reports/render.ts";
import { VEGA_LITE_SCHEMA } from "../../reports/spec_common.ts";
import { tokenEntropyBars } from "../../reports/spec_histograms.ts";
import { fixtureInputs } from "./_fixtures.ts";
import { testPresetRun } from "./_dag.ts";

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function assertValid(id: string, spec: TopLevelSpec): void {
  assert.equal(spec.$schema, VEGA_LITE_SCHEMA, `${id}: $schema`);
  const { vega, warnings } = compileSpec(spec);
  assert.deepEqual(warnings, [], `${id}: vega-lite warnings`);
  parseVega(vega); // throws on an invalid Vega spec
}

Deno.test("every figure of the test preset's report compiles with vega-lite without warnings and parses with vega", async () => {
  const { reportDir } = await testPresetRun();
  const ids: string[] = [];
  for (const entry of FIGURES) {
    const path = `${reportDir}/figures/${entry.id}.vl.json`;
    const spec = JSON.parse(await Deno.readTextFile(path)) as TopLevelSpec;
    assertValid(entry.id, spec);
    const svg = await Deno.readTextFile(`${reportDir}/figures/${entry.id}.svg`);
    assert.match(svg, /^<svg [^>]*width="\d+" height="\d+"/, `${entry.id}.svg`);
    const png = await Deno.readFile(`${reportDir}/figures/${entry.id}.png`);
    assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE, `${entry.id}.png`);
    ids.push(entry.id);
  }
  assert.equal(ids.length, 12);
});

Deno.test("every spec built from the fixture compiles, parses, and renders to a non-empty SVG and a PNG", async () => {
  const { figures, skipped } = buildFigures(fixtureInputs());
  assert.deepEqual(skipped, []);
  assert.deepEqual(figures.map((f) => f.id), FIGURES.map((f) => f.id));
  for (const figure of figures) {
    assertValid(figure.id, figure.spec);
    const warnings: string[] = [];
    const svg = await renderSvg(figure.spec, warnings);
    assert.deepEqual(warnings, [], `${figure.id}: runtime warnings`);
    assert.ok((svg.match(/<path/g) ?? []).length >= 3, `${figure.id}: an SVG with marks`);
    const png = await renderPng(svg, { scale: 1 });
    assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
    assert.ok(png.length > 2000, `${figure.id}: ${png.length} bytes of PNG`);
  }
});

Deno.test("learning curves carry mean ± SE bands across seeds, computed before the spec", () => {
  const { figures } = buildFigures(fixtureInputs());
  const entropy = figures.find((f) => f.id === "entropy")!.spec as {
    data: { values: Record<string, number | string>[] };
  };
  const first = entropy.data.values.filter((v) => v.step === 0 && v.series === "SENT");
  assert.equal(first.length, 1);
  const { mean, lo, hi, n } = first[0] as Record<string, number>;
  assert.equal(n, 2);
  assert.ok(lo < mean && mean < hi);
  assert.ok(Math.abs(mean - lo - (hi - mean)) < 1e-4); // 6 significant digits in the spec
  // one seed: no band
  const single = buildFigures(fixtureInputs({ seeds: [1] })).figures.find((f) => f.id === "reward")!
    .spec as { data: { values: Record<string, number>[] } };
  assert.ok(single.data.values.every((v) => v.lo === v.mean && v.hi === v.mean && v.n === 1));
});

Deno.test("a figure whose data is absent is skipped with the reason instead of drawn empty", () => {
  const { figures, skipped } = buildFigures(
    fixtureInputs({ without: ["results", "train", "score", "curriculum", "warmup"] }),
  );
  assert.deepEqual(figures, []);
  const reasons = Object.fromEntries(skipped.map((s) => [s.id, s.reason]));
  assert.equal(reasons.entropy, "no train node in this run");
  assert.equal(reasons.pass_at_k, "no results.json in this run");
  assert.equal(reasons.semantic_entropy, "no score artifact in this run");
  assert.equal(reasons.token_entropy, "no token_entropy.json in this run");
  assert.match(reasons.warmup_loss, /^no warm-up/);
  // The SE histogram without a curriculum has no cut lines, but is drawn.
  const noCuts = buildFigures(fixtureInputs({ without: ["curriculum"] })).figures
    .find((f) => f.id === "semantic_entropy")!.spec as { layer: unknown[] };
  assert.equal(noCuts.layer.length, 1);
});

Deno.test("tokenEntropyBars() and histogramQuantile() read the low-entropy cut off log-spaced bins", () => {
  const edges = [0.01, 0.1, 1, 10];
  const counts = [0, 10, 20, 10, 0];
  const bars = tokenEntropyBars(edges, counts);
  assert.deepEqual(bars, [
    { from: 0.01, to: 0.1, count: 10 },
    { from: 0.1, to: 1, count: 20 },
    { from: 1, to: 10, count: 10 },
  ]);
  // 80 % of 40 tokens = 32: 2 into the last bin's 10 → 1 · 10^0.2
  assert.ok(Math.abs(histogramQuantile(bars, 0.8)! - 10 ** 0.2) < 1e-12);
  assert.equal(histogramQuantile(bars, 0.25), 0.1);
  assert.equal(histogramQuantile([], 0.8), null);
  // the first bin starts one spacing below edges[0]; the open last bin ends one spacing above
  assert.deepEqual(tokenEntropyBars([1, 10], [1, 0, 1]), [{ from: 0.1, to: 1, count: 1 }, {
    from: 10,
    to: 100,
    count: 1,
  }]);
});
