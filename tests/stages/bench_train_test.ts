/** The training-loop benchmark: its figures from metrics rows, and one real run on the test preset. */

import assert from "node:assert/strict";
import { benchSets, benchTrain, loopFigures } from "../../stages/bench_train.ts";
import { makeTestDir } from "../_tmp.ts";

/** A metrics row with the fields the benchmark reads. */
function row(bucket: number, parts: [number, number, number], step: number, accuracy = 0.5) {
  const [generate, score, update] = parts;
  return {
    bucket,
    "seconds/generate": generate,
    "seconds/score": score,
    "seconds/update": update,
    step_seconds: step,
    tokens_per_s: 1000 * step,
    rollout_tokens_per_s: 100 * step,
    accuracy,
  };
}

Deno.test("loopFigures() leaves out each bucket's first step and takes medians of the rest", () => {
  const rows = [
    row(0, [5, 1, 1], 9, 0), // compiles: left out
    row(0, [1, 1, 1], 4),
    row(0, [2, 1, 1], 5),
    row(1, [6, 2, 2], 12, 0), // new bucket: left out
    row(1, [1, 1, 2], 4.5),
  ];
  const f = loopFigures(rows);
  assert.equal(f.steps, 3);
  assert.equal(f.stepSeconds, 4.5);
  assert.equal(f.updateTokensPerS, 4500);
  assert.equal(f.rolloutTokensPerS, 450);
  assert.equal(f.accuracy, 0.5);
  // generate shares 1/4, 2/5, 1/4.5; other = (4−3)/4, (5−4)/5, (4.5−4)/4.5
  assert.equal(f.shares.generate, 1 / 4);
  assert.equal(f.shares.other, 1 / 5);
});

Deno.test("loopFigures() names the problem when every step starts a bucket", () => {
  assert.throws(
    () => loopFigures([row(0, [1, 1, 1], 4), row(1, [1, 1, 1], 4)]),
    /2 steps logged, none after a bucket's first; expected at least two steps per curriculum bucket/,
  );
});

Deno.test("benchSets() trains one method and seed on steps × promptsPerStep problems", () => {
  assert.deepEqual(benchSets(16, { steps: 12 }), [
    "train.methods=sent",
    "runtime.seeds=1",
    "data.trainProblems=192",
    "base.warmup.steps=500",
  ]);
  assert.deepEqual(benchSets(4, { steps: 4, warmupSteps: null }).at(-1), "data.trainProblems=16");
});

Deno.test("benchTrain() runs the real train stage on the test preset and reports every figure", async () => {
  const store = `${await makeTestDir("bench-train")}/store`;
  const results = await benchTrain({
    steps: 4,
    preset: "test",
    store,
    warmupSteps: null,
    rounds: 1,
    log: () => {},
  });
  const byName = new Map(results.map((r) => [r.name, r]));
  assert.deepEqual([...byName.keys()], [
    "train.rollout_tokens_s",
    "train.update_tokens_s",
    "train.update_vs_engine",
    "train.share_generate",
    "train.share_score",
    "train.share_update",
    "train.share_other",
    "train.step_s",
    "train.accuracy",
  ]);
  for (
    const name of ["train.rollout_tokens_s", "train.update_tokens_s", "train.update_vs_engine"]
  ) {
    const r = byName.get(name)!;
    assert.ok(r.value > 0 && r.reference! > 0 && r.ratio! > 0, JSON.stringify(r));
  }
  assert.equal(byName.get("train.update_vs_engine")!.target, ">= 0.8");
  assert.equal(byName.get("train.share_other")!.target, "<= 0.10");
  const shares = ["generate", "score", "update", "other"].map((p) =>
    byName.get(`train.share_${p}`)!.value
  );
  for (const s of shares) assert.ok(s >= 0 && s <= 1, `shares ${shares}`);
  // medians of per-step shares: their sum is 1 up to the spread between steps
  const sum = shares.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(sum - 1) < 0.1, `shares ${shares} sum to ${sum}`);
});
