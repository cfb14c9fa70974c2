import assert from "node:assert/strict";
import { extractAnswer, TINY_AIME_EXTRACTION } from "../../data/extract.ts";
import { mathEqual } from "../../data/grade/mod.ts";
import { tinyAimeTrainingText } from "../../data/prompts.ts";
import {
  ANSWER_MAX,
  canonicalProblem,
  generateTinyAime,
  problemBucket,
  TINY_AIME_LIMITS,
  type TinyAimeSplit,
} from "../../data/tiny_aime/mod.ts";
import { tinyAimeTokenizer } from "../../data/tokenizer_char.ts";

const train = generateTinyAime("tiny-aime-train", { seed: 0 });
const aime24 = generateTinyAime("tiny-aime24", { seed: 0 });
const aime25 = generateTinyAime("tiny-aime25", { seed: 0 });
const all = [...train.rows, ...aime24.rows, ...aime25.rows];

Deno.test("generateTinyAime() gives default sizes 4000 / 100 / 100", () => {
  assert.equal(train.rows.length, 4000);
  assert.equal(aime24.rows.length, 100);
  assert.equal(aime25.rows.length, 100);
});

Deno.test("generateTinyAime() is deterministic by seed", () => {
  for (const split of ["tiny-aime-train", "tiny-aime24", "tiny-aime25"] as TinyAimeSplit[]) {
    const a = generateTinyAime(split, { seed: 7, size: 200 });
    const b = generateTinyAime(split, { seed: 7, size: 200 });
    assert.deepEqual(a, b);
    const c = generateTinyAime(split, { seed: 8, size: 200 });
    assert.notDeepEqual(a.rows.map((r) => r.problem), c.rows.map((r) => r.problem));
  }
});

Deno.test("generateTinyAime() splits share no problem, by canonical text, for any seeds", () => {
  const sets = [
    train.rows,
    aime24.rows,
    aime25.rows,
    generateTinyAime("tiny-aime24", { seed: 99 }).rows,
  ]
    .map((rows) => new Set(rows.map((r) => canonicalProblem(r.problem))));
  const [trainSet, a24, a25, a24other] = sets;
  for (const key of a24) assert.ok(!trainSet.has(key) && !a25.has(key), key);
  for (const key of a25) assert.ok(!trainSet.has(key), key);
  for (const key of a24other) assert.ok(!trainSet.has(key) && !a25.has(key), key);
  for (
    const [set, rows] of [[trainSet, train.rows], [a24, aime24.rows], [a25, aime25.rows]] as const
  ) {
    assert.equal(set.size, rows.length, "duplicates inside a split");
  }
  assert.ok(aime24.rows.every((r) => problemBucket(r.problem) === 0));
  assert.ok(aime25.rows.every((r) => problemBucket(r.problem) === 1));
});

Deno.test("generateTinyAime() answers are integers 0–999 and every trace line is correct arithmetic", () => {
  const apply: Record<string, (a: number, b: number) => number> = {
    "+": (a, b) => a + b,
    "-": (a, b) => a - b,
    "*": (a, b) => a * b,
    "/": (a, b) => a / b,
    "%": (a, b) => a % b,
  };
  for (const row of all) {
    const answer = Number(row.answer);
    assert.ok(Number.isInteger(answer) && answer >= 0 && answer <= ANSWER_MAX, row.id);
    const lines = row.solution!.split("\n");
    assert.equal(lines.pop(), `#### ${row.answer}`, row.id);
    assert.equal(lines.length, row.difficulty!.steps, row.id);
    let last = NaN;
    for (const line of lines) {
      const m = /^(\d+)([-+*/%])(\d+)=(\d+)$/.exec(line);
      assert.ok(m, `${row.id}: bad step ${line}`);
      assert.equal(apply[m[2]](Number(m[1]), Number(m[3])), Number(m[4]), `${row.id}: ${line}`);
      last = Number(m[4]);
    }
    assert.equal(last, answer, row.id);
  }
});

Deno.test("generateTinyAime() linear problems are solved by their answer", () => {
  const linear = all.filter((r) => r.difficulty!.family === "linear");
  assert.ok(linear.length > 100);
  for (const row of linear) {
    const [lhs, rhs] = row.problem.replace(";x=?", "").split("=");
    const value = new Function(`return ${lhs.replaceAll("x", `(${row.answer})`)}`)() as number;
    assert.equal(value, Number(rhs), row.problem);
  }
});

Deno.test("generateTinyAime() rows fit the 128-character context in the task's alphabet", () => {
  const tok = tinyAimeTokenizer();
  for (const row of all) {
    assert.ok(row.problem.length <= TINY_AIME_LIMITS.problemChars, row.problem);
    assert.ok(row.solution!.length <= TINY_AIME_LIMITS.solutionChars, row.solution!);
    const ids = tok.encode(tinyAimeTrainingText(row.problem, row.solution!), {
      bos: true,
      eos: true,
    });
    assert.ok(ids.length <= TINY_AIME_LIMITS.sequenceTokens, row.id);
  }
});

Deno.test("generateTinyAime() difficulty covers steps 1–5, both tiers, three families; eval is harder", () => {
  const stats = (rows: typeof all) => ({
    steps: new Set(rows.map((r) => r.difficulty!.steps)),
    families: new Set(rows.map((r) => r.difficulty!.family)),
    tiers: new Set(rows.map((r) => r.difficulty!.operands)),
    meanSteps: rows.reduce((s, r) => s + r.difficulty!.steps!, 0) / rows.length,
    meanLevel: rows.reduce((s, r) => s + r.difficulty!.level, 0) / rows.length,
  });
  const t = stats(train.rows);
  const e = stats([...aime24.rows, ...aime25.rows]);
  console.log(
    `train mean steps ${t.meanSteps.toFixed(2)} level ${t.meanLevel.toFixed(2)}; ` +
      `eval mean steps ${e.meanSteps.toFixed(2)} level ${e.meanLevel.toFixed(2)}`,
  );
  assert.deepEqual([...t.steps].sort(), [1, 2, 3, 4, 5]);
  assert.deepEqual([...t.families].sort(), ["chain", "linear", "power"]);
  assert.deepEqual([...t.tiers].sort(), ["large", "small"]);
  for (const row of all) {
    const d = row.difficulty!;
    assert.equal(d.level, d.steps! + (d.operands === "large" ? 1 : 0));
  }
  assert.ok(e.meanSteps > t.meanSteps + 0.3);
  assert.ok(e.meanLevel > t.meanLevel + 0.4);
  // Every step count is well represented in train (share within 5 points of the mix).
  const share = (k: number) =>
    train.rows.filter((r) => r.difficulty!.steps === k).length / train.rows.length;
  for (const [k, w] of [[1, 0.2], [2, 0.25], [3, 0.25], [4, 0.2], [5, 0.1]]) {
    assert.ok(Math.abs(share(k) - w) < 0.05, `steps ${k}: ${share(k)}`);
  }
});

Deno.test("generateTinyAime() traces end in an answer the tiny-AIME extractor and grader accept", () => {
  for (const row of all) {
    const got = extractAnswer(row.solution!, TINY_AIME_EXTRACTION);
    assert.ok(got.kind === "answer" && mathEqual(got.value, row.answer), row.id);
  }
});

Deno.test("generateTinyAime() rejects an unknown split and an impossible size", () => {
  assert.throws(
    () => generateTinyAime("tiny-aime26" as TinyAimeSplit),
    /unknown tiny-AIME split "tiny-aime26"/,
  );
  assert.throws(
    () => generateTinyAime("tiny-aime24", { size: -1 }),
    /non-negative integer, got -1/,
  );
});
