import assert from "node:assert/strict";
import { mathEqual } from "../../data/grade/mod.ts";
import { semanticEntropy } from "../../stages/_rl/semantic_entropy.ts";

const close = (actual: number, expected: number, what: string, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual}, expected ${expected}`);

const same = (a: string, b: string) => a === b;

Deno.test("semanticEntropy() gives 1.320888 nats for clusters {3,2,2,1} with the math grader", () => {
  const answers = ["12", "12.0", null, "7", "\\frac{24}{2}", null, "7", "3"];
  const se = semanticEntropy(answers, mathEqual);
  assert.deepEqual(se.clusters, [3, 2, 2, 1]);
  assert.deepEqual(se.clusterOf, [0, 0, 1, 2, 0, 1, 2, 3]);
  close(se.entropy, 1.320888, "nats");
  close(semanticEntropy(answers, mathEqual, { unit: "bits" }).entropy, 1.905639, "bits");
});

Deno.test("semanticEntropy() is 0 when all answers agree and ln M when all differ", () => {
  const agree = semanticEntropy(["0.5", "\\frac{1}{2}", "1/2", "0.50"], mathEqual);
  assert.deepEqual(agree.clusters, [4]);
  assert.ok(Object.is(agree.entropy, 0), `entropy ${agree.entropy}`);
  const differ = semanticEntropy(["1", "2", "3", "4", "5", "6", "7", "8"], mathEqual);
  assert.deepEqual(differ.clusters, [1, 1, 1, 1, 1, 1, 1, 1]);
  close(differ.entropy, Math.log(8), "M=8", 1e-12);
  close(semanticEntropy(differ.clusterOf.map(String), same, { unit: "bits" }).entropy, 3, "bits");
  const sixteen = Array.from({ length: 16 }, (_, i) => String(i));
  close(semanticEntropy(sixteen, same).entropy, Math.log(16), "M=16", 1e-12);
  // Seven clusters out of eight (one pair) stay below 2 nats: 1.906, so SE ≥ 2 needs all 8 answers to differ.
  close(
    semanticEntropy(["1", "1", "2", "3", "4", "5", "6", "7"], same).entropy,
    1.906155,
    "7 of 8",
  );
});

Deno.test("semanticEntropy() puts every unparsable answer in one cluster, never graded", () => {
  const calls: Array<[string, string]> = [];
  const spy = (a: string, b: string) => {
    calls.push([a, b]);
    return a === b;
  };
  const se = semanticEntropy([null, "4", null, null, "4"], spy);
  assert.deepEqual(se.clusters, [3, 2]);
  assert.deepEqual(se.clusterOf, [0, 1, 0, 0, 1]);
  assert.deepEqual(calls, [["4", "4"]]); // only the second "4" against its representative
  const allNull = semanticEntropy([null, null, null], spy);
  assert.deepEqual([allNull.clusters, allNull.entropy], [[3], 0]);
});

Deno.test("semanticEntropy() compares each answer with the first member of each cluster", () => {
  // A non-transitive equivalence: |a − b| ≤ 1. "2" joins "1"'s cluster; "3" is compared only
  // with the representative "1", not with "2", so it starts a new cluster.
  const near = (a: string, b: string) => Math.abs(Number(a) - Number(b)) <= 1;
  const se = semanticEntropy(["1", "2", "3", "4"], near);
  assert.deepEqual(se.clusters, [2, 2]);
  assert.deepEqual(se.clusterOf, [0, 0, 1, 1]);
  close(se.entropy, Math.log(2), "two halves", 1e-12);
  // It joins the first matching cluster in order of appearance.
  assert.deepEqual(semanticEntropy(["1", "3", "2"], near).clusterOf, [0, 1, 0]);
});

Deno.test("semanticEntropy() rejects an empty answer list and an unknown unit", () => {
  assert.throws(() => semanticEntropy([], same), /semanticEntropy: no answers/);
  assert.throws(
    // @ts-expect-error: "dits" is not a unit.
    () => semanticEntropy(["1"], same, { unit: "dits" }),
    /unit is "dits"; expected one of nats, bits/,
  );
});
