import assert from "node:assert/strict";
import { curriculumSplit, type ScoredItem } from "../../stages/_rl/curriculum_split.ts";
import { Rng } from "../../pipeline/rng.ts";

const items = (ses: number[]): ScoredItem[] => ses.map((se, i) => ({ id: `q${i}`, se }));

Deno.test("curriculumSplit() median-splits distinct SE values low → high", () => {
  const got = curriculumSplit(items([1.2, 0, 2.08, 0.5, 1.9, 0.9]), {
    split: "quantiles",
    seed: 1,
  });
  assert.deepEqual(got.buckets, [["q1", "q3", "q5"], ["q0", "q4", "q2"]]);
  assert.deepEqual(got.cuts, [1.2]);
  assert.deepEqual(got.stats.map((s) => [s.count, s.minSe, s.maxSe]), [[3, 0, 0.9], [
    3,
    1.2,
    2.08,
  ]]);
  assert.ok(Math.abs(got.stats[0].meanSe! - 1.4 / 3) < 1e-12);
});

Deno.test("curriculumSplit() makes quantile buckets whose sizes differ by at most one", () => {
  const ses = Array.from({ length: 10 }, (_, i) => i / 10);
  const counts = (s: number) =>
    curriculumSplit(items(ses), { split: "quantiles", buckets: s, seed: 0 }).buckets.map((b) =>
      b.length
    );
  assert.deepEqual(counts(1), [10]);
  assert.deepEqual(counts(2), [5, 5]);
  assert.deepEqual(
    curriculumSplit(items([0, 1, 2]), { split: "quantiles", seed: 0 }).buckets.map((b) => b.length),
    [1, 2],
  );
  assert.deepEqual(counts(3), [3, 3, 4]); // ⌊b·10/3⌋ = 0, 3, 6, 10
  assert.deepEqual(counts(4), [2, 3, 2, 3]); // 0, 2, 5, 7, 10
  const three = curriculumSplit(items(ses), { split: "quantiles", buckets: 3, seed: 0 });
  assert.deepEqual(three.cuts, [0.3, 0.6]);
  assert.deepEqual(three.buckets.flat(), ses.map((_, i) => `q${i}`)); // every id once, in order
});

Deno.test("curriculumSplit() threshold split puts SE in [τ_{i−1}, τ_i), equal to τ going up", () => {
  const ses = [0, 2, 1.99, 3.5, 2.01, 0.7, 5];
  const two = curriculumSplit(items(ses), { split: "thresholds", thresholds: [2], seed: 3 });
  assert.deepEqual(two.buckets, [["q0", "q5", "q2"], ["q1", "q4", "q3", "q6"]]);
  assert.deepEqual(two.cuts, [2]);
  const three = curriculumSplit(items(ses), {
    split: "thresholds",
    thresholds: [1, 3],
    buckets: 3,
    seed: 3,
  });
  assert.deepEqual(three.buckets, [["q0", "q5"], ["q2", "q1", "q4"], ["q3", "q6"]]);
  // All below the threshold: the high bucket is empty and its stats are null.
  const low = curriculumSplit(items([0, 0.5]), { split: "thresholds", thresholds: [2], seed: 3 });
  assert.deepEqual(low.buckets, [["q0", "q1"], []]);
  assert.deepEqual(low.stats[1], { count: 0, minSe: null, maxSe: null, meanSe: null });
});

/** Twelve questions with SE = 0 (all answers agree) and eight with SE > 0. */
const TIED = items([...Array(12).fill(0), 0.38, 0.66, 0.9, 1.04, 1.2, 1.5, 1.73, 2.08]);

Deno.test("curriculumSplit() breaks SE ties with the seed: same seed same buckets, others differ", () => {
  const split = (seed: number | string) => curriculumSplit(TIED, { split: "quantiles", seed });
  const a = split(1);
  // The median cut falls inside the run of zeros: 10 zeros go low, the other 2 go high.
  assert.equal(a.buckets[0].length, 10);
  assert.deepEqual(a.cuts, [0]);
  assert.deepEqual(a.stats.map((s) => [s.minSe, s.maxSe]), [[0, 0], [0, 2.08]]);
  const highZeros = (r: typeof a) => r.buckets[1].filter((id) => Number(id.slice(1)) < 12).sort();
  assert.equal(highZeros(a).length, 2);
  // Same seed: byte-identical result. Different seeds: a different choice of tied questions.
  assert.deepEqual(split(1), a);
  assert.deepEqual(split("1"), split("1"));
  const choices = new Set([1, 2, 3, 4, 5, 6].map((s) => highZeros(split(s)).join(",")));
  assert.ok(choices.size >= 4, `only ${choices.size} distinct choices over 6 seeds`);
  // Non-tied questions never move: the eight SE > 0 questions are always high, in SE order.
  for (const s of [1, 2, 3]) {
    assert.deepEqual(
      split(s).buckets[1].slice(2),
      TIED.slice(12).map((x) => x.id),
    );
  }
});

Deno.test("curriculumSplit() depends only on the set of items and the seed, not their order", () => {
  const shuffled = Rng.fromSeed("input-order").shuffle([...TIED]);
  const reversed = [...TIED].reverse();
  const reference = curriculumSplit(TIED, { split: "quantiles", seed: 9 });
  assert.deepEqual(curriculumSplit(shuffled, { split: "quantiles", seed: 9 }), reference);
  assert.deepEqual(curriculumSplit(reversed, { split: "quantiles", seed: 9 }), reference);
});

Deno.test("curriculumSplit() gives every tied question a chance on either side of the cut", () => {
  const high = new Map<string, number>();
  for (let seed = 0; seed < 60; seed++) {
    for (const id of curriculumSplit(TIED, { split: "quantiles", seed }).buckets[1].slice(0, 2)) {
      high.set(id, (high.get(id) ?? 0) + 1);
    }
  }
  assert.equal(high.size, 12, `tied ids seen high: ${[...high.keys()]}`);
});

Deno.test("curriculumSplit() rejects bad options and items, naming the value", () => {
  const ok = items([0, 1, 2]);
  const cases: Array<[() => unknown, RegExp]> = [
    [
      () => curriculumSplit(ok, { split: "quantiles", buckets: 0, seed: 1 }),
      /buckets is 0; expected an integer ≥ 1/,
    ],
    [() => curriculumSplit(ok, { split: "quantiles", buckets: 1.5, seed: 1 }), /buckets is 1.5/],
    [
      () => curriculumSplit(ok, { split: "quantiles", buckets: 4, seed: 1 }),
      /3 items cannot fill 4 quantile buckets/,
    ],
    [
      () => curriculumSplit(ok, { split: "quantiles", thresholds: [2], seed: 1 }),
      /thresholds \[2\] given with split "quantiles"/,
    ],
    [
      () => curriculumSplit(ok, { split: "thresholds", seed: 1 }),
      /split "thresholds" needs a thresholds list/,
    ],
    [
      () => curriculumSplit(ok, { split: "thresholds", thresholds: [2, 1], seed: 1 }),
      /thresholds \[2,1\] are not strictly ascending at 1 \(1\)/,
    ],
    [
      () => curriculumSplit(ok, { split: "thresholds", thresholds: [1, 1], seed: 1 }),
      /not strictly ascending/,
    ],
    [
      () => curriculumSplit(ok, { split: "thresholds", thresholds: [NaN], seed: 1 }),
      /threshold 0 is NaN/,
    ],
    [
      () => curriculumSplit(ok, { split: "thresholds", thresholds: [1], buckets: 3, seed: 1 }),
      /buckets is 3 with 1 thresholds; expected buckets = thresholds.length \+ 1 = 2/,
    ],
    [
      // @ts-expect-error: "median" is not a split rule.
      () => curriculumSplit(ok, { split: "median", seed: 1 }),
      /split is "median"; expected one of quantiles, thresholds/,
    ],
    [
      () => curriculumSplit([...ok, { id: "q1", se: 3 }], { split: "quantiles", seed: 1 }),
      /id "q1" appears twice/,
    ],
    [
      () => curriculumSplit([{ id: "x", se: NaN }], { split: "quantiles", buckets: 1, seed: 1 }),
      /item 0 \("x"\) has se NaN/,
    ],
  ];
  for (const [call, message] of cases) assert.throws(call, message);
  assert.deepEqual(curriculumSplit([], { split: "thresholds", thresholds: [2], seed: 1 }).buckets, [
    [],
    [],
  ]);
});
