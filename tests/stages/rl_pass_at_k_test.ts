import assert from "node:assert/strict";
import { avgAtK, passAtK, passAtKPercent } from "../../stages/_rl/pass_at_k.ts";

const close = (actual: number, expected: number, what: string, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected}`);

/** 1 − C(n−c, k)/C(n, k) with exact BigInt binomials, as an independent reference. */
function binomialReference(n: number, c: number, k: number): number {
  const choose = (a: number, b: number): bigint => {
    if (b < 0 || b > a) return 0n;
    let r = 1n;
    for (let i = 1; i <= b; i++) r = (r * BigInt(a - b + i)) / BigInt(i);
    return r;
  };
  const miss = choose(n - c, k);
  const all = choose(n, k);
  return 1 - Number((miss * 10n ** 15n) / all) / 1e15;
}

Deno.test("passAtK() matches the unbiased estimator on the SENT notes' vectors (n=16,c=3,k=8 → 0.9; n=8,c=2,k=4 → 0.785714)", () => {
  close(passAtK(16, 3, 8), 0.9, "n=16 c=3 k=8");
  close(passAtK(8, 2, 4), 0.785714, "n=8 c=2 k=4");
  close(passAtK(8, 2, 4), 1 - 3 / 14, "n=8 c=2 k=4 exact", 1e-15);
});

Deno.test("passAtK() is 1 when n − c < k, 0 when c = 0, and c/n when k = 1", () => {
  assert.equal(passAtK(8, 5, 4), 1);
  assert.equal(passAtK(8, 8, 8), 1);
  assert.equal(passAtK(16, 1, 16), 1); // n = k: at least one of all samples is correct
  assert.equal(passAtK(16, 0, 16), 0);
  assert.equal(passAtK(16, 0, 1), 0);
  for (let c = 0; c <= 16; c++) close(passAtK(16, c, 1), c / 16, `k=1 c=${c}`, 1e-12);
});

Deno.test("passAtK() equals exact binomial ratios over a grid, and grows with k and c", () => {
  for (const n of [1, 2, 5, 8, 16, 32, 64]) {
    for (let c = 0; c <= n; c++) {
      for (let k = 1; k <= n; k++) {
        const got = passAtK(n, c, k);
        close(got, binomialReference(n, c, k), `n=${n} c=${c} k=${k}`, 1e-12);
        if (k > 1) assert.ok(got >= passAtK(n, c, k - 1) - 1e-15, `monotone in k: ${n} ${c} ${k}`);
        if (c > 0) assert.ok(got >= passAtK(n, c - 1, k) - 1e-15, `monotone in c: ${n} ${c} ${k}`);
      }
    }
  }
  // Large n stays finite where binomials overflow doubles: C(2000, 1000) ≈ 10^600.
  const big = passAtK(2000, 10, 1000);
  assert.ok(big > 0.999 && big <= 1, `n=2000: ${big}`);
});

Deno.test("passAtK() rejects k > n, c > n and non-integers, naming the value", () => {
  assert.throws(() => passAtK(8, 2, 9), /passAtK: k is 9; expected an integer in \[1, 8\]/);
  assert.throws(() => passAtK(8, 2, 0), /k is 0/);
  assert.throws(() => passAtK(8, 9, 4), /c is 9; expected an integer in \[0, 8\]/);
  assert.throws(() => passAtK(8, -1, 4), /c is -1/);
  assert.throws(() => passAtK(0, 0, 1), /n is 0/);
  assert.throws(() => passAtK(8.5, 2, 4), /n is 8.5/);
  assert.throws(() => passAtK(8, 2, 2.5), /k is 2.5/);
});

Deno.test("passAtKPercent() is 100 × the mean pass@k over problems", () => {
  close(passAtKPercent([{ n: 16, c: 3 }, { n: 16, c: 0 }], 8), 45, "two problems");
  close(
    passAtKPercent([{ n: 8, c: 2 }, { n: 8, c: 8 }, { n: 8, c: 0 }], 4),
    (100 * (1 - 3 / 14 + 1)) / 3,
    "three",
  );
  // Extra fields (result records) are fine.
  assert.equal(passAtKPercent([{ n: 4, c: 1, id: "p1" } as { n: number; c: number }], 4), 100);
  assert.throws(() => passAtKPercent([], 1), /passAtKPercent: no problems/);
  assert.throws(
    () => passAtKPercent([{ n: 8, c: 1 }, { n: 4, c: 1 }], 8),
    /passAtKPercent: problem 1: passAtK: k is 8; expected an integer in \[1, 4\]/,
  );
});

Deno.test("avgAtK() averages accuracy over the first k samples of each problem", () => {
  const correct = [
    [true, false, true, true, false, false, false, false],
    [false, false, false, true, true, true, true, true],
  ];
  assert.equal(avgAtK(correct, 1), 50); // (1 + 0) / 2
  assert.equal(avgAtK(correct, 2), 25); // (1/2 + 0) / 2
  assert.equal(avgAtK(correct, 4), 50); // (3/4 + 1/4) / 2
  assert.equal(avgAtK(correct, 8), 50); // (3/8 + 5/8) / 2
  // With n = k, Avg@k is the plain mean of c/n (OpenCompass' "k runs average").
  const counts = correct.map((s) => s.filter(Boolean).length / s.length);
  assert.equal(avgAtK(correct, 8), (100 * (counts[0] + counts[1])) / 2);
});

Deno.test("avgAtK() rejects an empty set, a bad k and problems with fewer than k samples", () => {
  assert.throws(() => avgAtK([], 1), /avgAtK: no problems/);
  assert.throws(() => avgAtK([[true]], 0), /avgAtK: k is 0; expected an integer/);
  assert.throws(
    () => avgAtK([[true, true], [true]], 2),
    /avgAtK: problem 1 has 1 samples; expected at least k = 2/,
  );
});
