import assert from "node:assert/strict";
import { TINY_AIME_EXTRACTION } from "../../data/extract.ts";
import type { ProblemRow } from "../../data/rows.ts";
import { scoreRecord } from "../../stages/score.ts";

const row: ProblemRow = {
  id: "p1",
  problem: "3*4-3=?",
  answer: "9",
  solution: null,
  difficulty: null,
};
const tiny = { reward: { extraction: TINY_AIME_EXTRACTION } };

/** A response in the built-in task's format, ending with the given answer line. */
const says = (answer: string) => `3*4=12\n12-3=${answer}\n#### ${answer}`;

Deno.test("scoreRecord() clusters hand-made answers by grader equality: {3, 2, 2, 1} → 1.320888 nats", () => {
  const answers = ["9", "9", "9", "8", "8", "7", "7", "6"];
  const r = scoreRecord(row, answers.map(says), tiny);
  assert.deepEqual(r.clusters, [3, 2, 2, 1]);
  assert.equal(r.semanticEntropy, 1.320888);
  assert.equal(r.accuracy, 3 / 8);
  assert.deepEqual(r.answers, answers);
});

Deno.test("scoreRecord() puts every unparsable response in one cluster", () => {
  const responses = [says("9"), "3*4=12", "no idea", says("9"), "####", says("10")];
  const r = scoreRecord(row, responses, tiny);
  assert.deepEqual(r.answers, ["9", null, null, "9", null, "10"]);
  assert.deepEqual(r.clusters.toSorted(), [1, 2, 3]);
  const p = [2 / 6, 3 / 6, 1 / 6];
  assert.equal(
    r.semanticEntropy,
    Math.round(-p.reduce((s, x) => s + x * Math.log(x), 0) * 1e6) / 1e6,
  );
});

Deno.test("scoreRecord() gives SE 0 to a problem answered wrongly but consistently", () => {
  const r = scoreRecord(row, Array(8).fill(says("10")), tiny);
  assert.deepEqual(r.clusters, [8]);
  assert.equal(r.semanticEntropy, 0);
  assert.equal(r.accuracy, 0);
});

Deno.test("scoreRecord() treats equal values in different forms as one answer", () => {
  const r = scoreRecord({ ...row, answer: "0.5" }, ["#### 1/2", "#### 0.5", "#### 2/4"], tiny);
  assert.deepEqual(r.clusters, [3]);
  assert.equal(r.accuracy, 1);
});
