/**
 * The seeded bootstrap (reports/bootstrap.ts) against a plain reference, and the paired Avg@k
 * comparisons built on it (reports/paired.ts) on hand-made problems.
 */

import assert from "node:assert/strict";
import { Rng } from "../../pipeline/rng.ts";
import { assembleResults, type ResultEntry, seedResult } from "../../stages/_rl/results.ts";
import { bootstrapMean, quantileSorted } from "../../reports/bootstrap.ts";
import { pairedComparisons, pairedDifferences } from "../../reports/paired.ts";
import { verdict } from "../../reports/paired_text.ts";
import { fixtureResults } from "./_fixtures.ts";

/** The textbook procedure, written out: B resamples, sort, interpolated percentiles. */
function plainBootstrap(values: number[], seed: string, resamples: number, level: number) {
  const rng = Rng.fromSeed(seed);
  const means: number[] = [];
  for (let b = 0; b < resamples; b++) {
    const draw: number[] = [];
    for (let i = 0; i < values.length; i++) draw.push(values[rng.int(values.length)]);
    means.push(draw.reduce((s, v) => s + v, 0) / draw.length);
  }
  means.sort((a, b) => a - b);
  const at = (p: number) => {
    const h = (means.length - 1) * p;
    const i = Math.floor(h);
    return means[i] + (h - i) * ((means[i + 1] ?? means[i]) - means[i]);
  };
  return { lo: at((1 - level) / 2), hi: at((1 + level) / 2) };
}

const VALUES = [12.5, -25, 0, 50, 25, -12.5, 0, 75, 0, 25, -50, 12.5];

Deno.test("bootstrapMean() equals a plain loop-and-sort reference on fixed data", () => {
  for (const [resamples, level] of [[2000, 0.95], [999, 0.9], [1, 0.5]] as const) {
    const got = bootstrapMean(VALUES, { seed: "fixed", resamples, level });
    const want = plainBootstrap(VALUES, "fixed", resamples, level);
    assert.equal(got.lo, want.lo);
    assert.equal(got.hi, want.hi);
    assert.equal(got.estimate, VALUES.reduce((s, v) => s + v, 0) / VALUES.length);
  }
});

Deno.test("bootstrapMean() of a large sample is close to the normal-theory interval mean ± 1.96 SE", () => {
  const rng = Rng.fromSeed("large");
  const values = Array.from({ length: 400 }, () => 100 * rng.float());
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const sd = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1));
  const half = 1.96 * sd / Math.sqrt(values.length);
  const ci = bootstrapMean(values, { seed: "large/ci", resamples: 4000 });
  assert.ok(Math.abs(ci.lo - (mean - half)) < 0.1 * half, `lo ${ci.lo} vs ${mean - half}`);
  assert.ok(Math.abs(ci.hi - (mean + half)) < 0.1 * half, `hi ${ci.hi} vs ${mean + half}`);
});

Deno.test("bootstrapMean() repeats for a seed, changes with another, and collapses on constant values", () => {
  const a = bootstrapMean(VALUES, { seed: 5 });
  assert.deepEqual(bootstrapMean(VALUES, { seed: 5 }), a);
  assert.notDeepEqual(bootstrapMean(VALUES, { seed: 6 }), a);
  assert.deepEqual(bootstrapMean([3, 3, 3], { seed: 1 }), {
    estimate: 3,
    lo: 3,
    hi: 3,
    resamples: 2000,
    level: 0.95,
  });
  assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantileSorted([7], 0.975), 7);
});

Deno.test("bootstrapMean() refuses bad input, naming the value and what was expected", () => {
  assert.throws(() => bootstrapMean([], { seed: 1 }), /no values; expected at least one/);
  assert.throws(
    () => bootstrapMean([1, NaN], { seed: 1 }),
    /value 1 is NaN; expected a finite number/,
  );
  assert.throws(
    () => bootstrapMean([1], { seed: 1, resamples: 0 }),
    /resamples is 0; expected an integer ≥ 1/,
  );
  assert.throws(
    () => bootstrapMean([1], { seed: 1, level: 1 }),
    /level is 1; expected a number in \(0, 1\)/,
  );
});

const T = true, F = false;

/** One set "s", n = 4, ks [2, 4]; problems by id. */
function results(spec: Record<string, Record<number, Record<string, boolean[]>>>) {
  const entries: ResultEntry[] = [];
  for (const [policy, seeds] of Object.entries(spec)) {
    for (const [seed, problems] of Object.entries(seeds)) {
      entries.push({
        set: "s",
        policy,
        seed: Number(seed),
        seedResult: seedResult(
          Object.entries(problems).map(([id, correct]) => ({
            id,
            correct,
            answers: correct.map(String),
          })),
          [2, 4],
        ),
      });
    }
  }
  return assembleResults(entries, [2, 4]);
}

Deno.test("pairedDifferences() pairs per problem and seed, Avg@k from the first k samples, seeds pooled", () => {
  const r = results({
    sent: {
      1: { p1: [T, T, F, F], p2: [F, T, T, T], p3: [T, T, T, T] },
      2: { p1: [T, F, F, F], p2: [F, F, T, T], p3: [T, T, T, T] },
    },
    grpo: {
      1: { p1: [F, F, T, T], p2: [T, F, F, F] },
      2: { p1: [T, T, F, F], p2: [F, F, F, F] },
      3: { p1: [T, T, T, T], p2: [T, T, T, T] },
    },
  });
  // Avg@2, seed by seed: p1 (100 − 0, 50 − 100) → 25; p2 (50 − 50, 0 − 0) → 0; p3 has no
  // partner; grpo's seed 3 has no partner either.
  assert.deepEqual(pairedDifferences(r.sets.s.sent, r.sets.s.grpo, 2), {
    differences: [25, 0],
    seeds: 2,
  });
  // Avg@4: p1 (50 − 50, 25 − 50) → −12.5; p2 (75 − 25, 50 − 0) → 50
  assert.deepEqual(pairedDifferences(r.sets.s.sent, r.sets.s.grpo, 4), {
    differences: [-12.5, 50],
    seeds: 2,
  });
});

Deno.test("pairedComparisons() compares every method with GRPO and with the base, each on its own stream", () => {
  const r = fixtureResults();
  const rows = pairedComparisons(r, { methods: ["grpo", "sent"] });
  assert.deepEqual(
    rows.map((row) => `${row.set} ${row.policy} vs ${row.reference} @${row.k}`),
    [
      "set-a grpo vs base @4",
      "set-a sent vs grpo @4",
      "set-a sent vs base @4",
      "set-b grpo vs base @4",
      "set-b sent vs grpo @4",
      "set-b sent vs base @4",
    ],
  );
  for (const row of rows) {
    const { differences } = pairedDifferences(
      r.sets[row.set][row.policy],
      r.sets[row.set][row.reference],
      4,
    );
    const plain = plainBootstrap(
      differences,
      `report/bootstrap/${row.set}/${row.policy}/${row.reference}/4`,
      2000,
      0.95,
    );
    assert.equal(row.lo, plain.lo);
    assert.equal(row.hi, plain.hi);
    assert.ok(row.lo <= row.delta && row.delta <= row.hi);
    assert.equal(row.problems, 8);
    assert.equal(row.seeds, 2);
  }
  // Without GRPO a method is compared with the base only; a missing base leaves nothing.
  const noGrpo = pairedComparisons(fixtureResults({ policies: ["base", "sent"] }), {
    methods: ["grpo", "sent"],
  });
  assert.deepEqual(noGrpo.map((row) => row.reference), ["base", "base"]);
  assert.deepEqual(
    pairedComparisons(fixtureResults({ policies: ["sent"] }), { methods: ["sent"] }),
    [],
  );
});

Deno.test("verdict() says higher or lower only when the interval excludes 0", () => {
  assert.equal(verdict({ lo: 0.1, hi: 2 }), "higher");
  assert.equal(verdict({ lo: -2, hi: -0.1 }), "lower");
  assert.equal(verdict({ lo: 0, hi: 2 }), "within noise");
  assert.equal(verdict({ lo: -1, hi: 1 }), "within noise");
});
