import assert from "node:assert/strict";
import { groupAdvantages, zeroVarianceGroups } from "../../stages/_rl/advantage.ts";
import { assertAllClose } from "../kernels/_numeric.ts";

const CLOSE = { atol: 1e-6, rtol: 0 };

Deno.test("groupAdvantages() matches the GRPO vector R=[1,−1,−1,−1,1,−1,−1,−1] → +1.620183 / −0.540061 (unbiased std, ε = 1e-6)", () => {
  const rewards = [1, -1, -1, -1, 1, -1, -1, -1]; // μ = −0.5, σ = sqrt(6/7) = 0.925820
  const got = groupAdvantages(rewards, 8);
  assert.ok(got instanceof Float64Array);
  const [right, wrong] = [1.620183, -0.540061];
  assertAllClose(got, rewards.map((r) => (r > 0 ? right : wrong)), "advantages", CLOSE);
  // The same from the formula, in float64: (R − μ) / (σ + ε).
  const sigma = Math.sqrt(6 / 7);
  assertAllClose(got, rewards.map((r) => (r + 0.5) / (sigma + 1e-6)), "formula", {
    atol: 1e-12,
    rtol: 0,
  });
});

Deno.test("groupAdvantages() gives 0 to every response of a group with equal rewards", () => {
  assert.deepEqual([...groupAdvantages([1, 1, 1, 1], 4)], [0, 0, 0, 0]);
  assert.deepEqual([...groupAdvantages([-1, -1, -1], 3)], [0, 0, 0]);
  // Exactly zero even when the mean is not exact in floating point.
  assert.deepEqual([...groupAdvantages([0.1, 0.1, 0.1], 3)], [0, 0, 0]);
  assert.deepEqual([...groupAdvantages([0.1, 0.1, 0.1], 3, { normalizeStd: false })], [0, 0, 0]);
});

Deno.test("groupAdvantages() normalizes each group on its own (group-major layout)", () => {
  const got = groupAdvantages([1, -1, 1, 1, -1, -1, 1, -1], 2);
  // Groups [1,−1], [1,1], [−1,−1], [1,−1]: σ = sqrt(2), A = ±1/(sqrt(2)+ε).
  const a = 1 / (Math.SQRT2 + 1e-6);
  assertAllClose(got, [a, -a, 0, 0, 0, 0, a, -a], "two-sample groups", { atol: 1e-12, rtol: 0 });
  const wide = groupAdvantages([1, -1, -1, -1, 1, 1, 1, -1], 4);
  const b = 1.5 / (1 + 1e-6); // μ = −0.5, σ = 1
  assertAllClose(wide, [b, -b / 3, -b / 3, -b / 3, b / 3, b / 3, b / 3, -b], "groups of 4", {
    atol: 1e-12,
    rtol: 0,
  });
});

Deno.test("groupAdvantages() with a group of one uses μ = 0 and σ = 1", () => {
  assertAllClose(groupAdvantages([1, -1, 0.5], 1), [1, -1, 0.5].map((r) => r / (1 + 1e-6)), "G=1", {
    atol: 1e-12,
    rtol: 0,
  });
  assert.deepEqual([...groupAdvantages([1, -1], 1, { normalizeStd: false })], [1, -1]);
});

Deno.test("groupAdvantages() without std normalization returns R − μ, and honours eps", () => {
  assert.deepEqual(
    [...groupAdvantages([1, -1, -1, -1], 4, { normalizeStd: false })],
    [1.5, -0.5, -0.5, -0.5],
  );
  const noEps = groupAdvantages([1, -1], 2, { eps: 0 });
  assert.deepEqual([...noEps], [1 / Math.SQRT2, -1 / Math.SQRT2]);
  const bigEps = groupAdvantages([1, -1], 2, { eps: 1 });
  assertAllClose(bigEps, [1 / (Math.SQRT2 + 1), -1 / (Math.SQRT2 + 1)], "eps=1", CLOSE);
  assert.equal(groupAdvantages(new Float32Array([]), 8).length, 0);
});

Deno.test("groupAdvantages() rejects bad group sizes, lengths, rewards and eps by name", () => {
  assert.throws(() => groupAdvantages([1, 2, 3], 2), /3 rewards do not split into groups of 2/);
  assert.throws(() => groupAdvantages([1, 2], 0), /groupSize is 0; expected a positive integer/);
  assert.throws(() => groupAdvantages([1, 2], 1.5), /groupSize is 1.5/);
  assert.throws(() => groupAdvantages([1, NaN], 2), /reward 1 is NaN; expected a finite number/);
  assert.throws(() => groupAdvantages([1, 2], 2, { eps: -1 }), /eps is -1; expected a finite/);
});

Deno.test("zeroVarianceGroups() is the fraction of groups with all-equal rewards", () => {
  assert.equal(zeroVarianceGroups([1, 1, -1, 1, -1, -1], 2), 2 / 3);
  assert.equal(zeroVarianceGroups([1, -1, -1, -1, 1, -1, -1, -1], 8), 0);
  assert.equal(zeroVarianceGroups([1, 1, 1, 1, -1, -1, -1, -1], 4), 1);
  assert.equal(zeroVarianceGroups([1, 1, 1], 1), 0); // groups of one always carry a signal
  assert.equal(zeroVarianceGroups([], 8), 0);
  assert.throws(() => zeroVarianceGroups([1, 1, 1], 2), /zeroVarianceGroups: 3 rewards/);
  // Consistent with groupAdvantages(): a zero-variance group is exactly a group of zeros.
  const rewards = [1, 1, -1, 1, -1, -1, 1, -1];
  const adv = groupAdvantages(rewards, 2);
  const zeroGroups = [0, 1, 2, 3].filter((g) => adv[2 * g] === 0 && adv[2 * g + 1] === 0).length;
  assert.equal(zeroVarianceGroups(rewards, 2), zeroGroups / 4);
});
