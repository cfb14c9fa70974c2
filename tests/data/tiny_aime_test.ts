import assert from "node:assert/strict";
import { extractAnswer, TINY_AIME_EXTRACTION } from "../../data/extract.ts";
import { mathEqual } from "../../data/grade/mod.ts";
import { tinyAimeTrainingText } from "../../data/prompts.ts";
import { makePrng } from "../../data/_prng.ts";
import {
  ANSWER_MAX,
  canonicalProblem,
  corruptTrace,
  DEFAULT_KNOBS,
  generateTinyAime,
  parseTrace,
  problemBucket,
  propagate,
  TINY_AIME_LIMITS,
  type TinyAimeSplit,
} from "../../data/tiny_aime/mod.ts";
import { tinyAimeTokenizer } from "../../data/tokenizer_char.ts";

const train = generateTinyAime("tiny-aime-train", { seed: 0 });
const aime24 = generateTinyAime("tiny-aime24", { seed: 0 });
const aime25 = generateTinyAime("tiny-aime25", { seed: 0 });
const all = [...train.rows, ...aime24.rows, ...aime25.rows];

Deno.test("generateTinyAime() gives default sizes 4000 / 256 / 256", () => {
  assert.equal(train.rows.length, 4000);
  assert.equal(aime24.rows.length, 256);
  assert.equal(aime25.rows.length, 256);
});

Deno.test("generateTinyAime() finds 512 distinct problems in each held-out bucket", () => {
  // Twice the default eval size, from the small default space (operands ≤ 10, 1–2 steps).
  for (const split of ["tiny-aime24", "tiny-aime25"] as TinyAimeSplit[]) {
    const set = generateTinyAime(split, { seed: 5, size: 512 });
    assert.equal(new Set(set.rows.map((r) => canonicalProblem(r.problem))).size, 512, split);
  }
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

Deno.test("generateTinyAime() keeps right operands within operandMax and multiplierMax", () => {
  const check = (rows: typeof all, operandMax: number, multiplierMax: number) => {
    for (const row of rows) {
      for (const step of parseTrace(row.solution!)) {
        const max = step.op === "*" || step.op === "/" ? multiplierMax : operandMax;
        assert.ok(step.b <= max, `${row.id}: ${step.a}${step.op}${step.b} (max ${max})`);
      }
    }
  };
  check(all, DEFAULT_KNOBS.operandMax, DEFAULT_KNOBS.multiplierMax);
  const knobs = {
    ...DEFAULT_KNOBS,
    operandMax: 30,
    multiplierMax: 9,
    steps: [3],
    stepWeights: [1],
  };
  const wide = generateTinyAime("tiny-aime-train", { seed: 1, size: 300, knobs }).rows;
  check(wide, 30, 9);
  assert.ok(wide.every((r) => r.difficulty!.steps === 3));
  assert.ok(wide.some((r) => parseTrace(r.solution!).some((s) => s.b > 10)));
});

Deno.test("generateTinyAime() draws only the families and step counts the knobs list", () => {
  const knobs = { ...DEFAULT_KNOBS, families: ["linear"], steps: [2, 4], stepWeights: [1, 1] };
  const { rows } = generateTinyAime("tiny-aime-train", { seed: 2, size: 400, knobs });
  assert.ok(rows.every((r) => r.difficulty!.family === "linear"));
  const four = rows.filter((r) => r.difficulty!.steps === 4).length / rows.length;
  assert.ok(Math.abs(four - 0.5) < 0.08, `share of 4-step problems ${four}`);
  assert.ok(rows.every((r) => [2, 4].includes(r.difficulty!.steps!)));
});

Deno.test("generateTinyAime() rejects knobs it cannot use, naming the data.tinyAime key", () => {
  const bad = (knobs: Partial<typeof DEFAULT_KNOBS>, pattern: RegExp) =>
    assert.throws(
      () => generateTinyAime("tiny-aime24", { size: 1, knobs: { ...DEFAULT_KNOBS, ...knobs } }),
      pattern,
    );
  bad({ families: ["spiral"] }, /data\.tinyAime\.families is \["spiral"\]; expected/);
  bad({ stepWeights: [1] }, /data\.tinyAime\.stepWeights .* one weight ≥ 0 per entry/);
  bad({ families: ["power"], steps: [1] }, /no family .* 1 step/);
  // The aime24 bucket holds about 60 one-step problems.
  const oneStep = { ...DEFAULT_KNOBS, steps: [1], stepWeights: [1] };
  assert.throws(
    () => generateTinyAime("tiny-aime24", { size: 200, knobs: oneStep }),
    /found only \d+ of 200 distinct problems .* widen data\.tinyAime/,
  );
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

Deno.test("generateTinyAime() default mix: steps 1–2, three families, the same mix in every split", () => {
  const stats = (rows: typeof all) => ({
    steps: new Set(rows.map((r) => r.difficulty!.steps)),
    families: new Set(rows.map((r) => r.difficulty!.family)),
    oneStep: rows.filter((r) => r.difficulty!.steps === 1).length / rows.length,
  });
  const head = stats(train.rows.slice(0, 256));
  const e = stats([...aime24.rows, ...aime25.rows]);
  console.log(
    `one-step share: first 256 train ${head.oneStep.toFixed(3)}, all train ` +
      `${stats(train.rows).oneStep.toFixed(3)}, eval ${e.oneStep.toFixed(3)}`,
  );
  for (const s of [stats(train.rows), e]) {
    assert.deepEqual([...s.steps].sort(), [1, 2]);
    assert.deepEqual([...s.families].sort(), ["chain", "linear", "power"]);
  }
  for (const row of all) assert.equal(row.difficulty!.level, row.difficulty!.steps);
  // The 256 first train problems follow stepWeights [1, 2] before the one-step space thins out;
  // the eval buckets hold about 60 one-step problems each, so their share is lower.
  assert.ok(Math.abs(head.oneStep - 1 / 3) < 0.08, `one-step share ${head.oneStep}`);
  assert.ok(e.oneStep > 0.05 && e.oneStep < head.oneStep, `eval one-step share ${e.oneStep}`);
});

Deno.test("corruptTrace() shifts one step by ±1…noiseMax and carries it to #### N", () => {
  const rows = train.rows.slice(0, 400);
  let corrupted = 0;
  let wrong = 0;
  for (const [i, row] of rows.entries()) {
    const clean = parseTrace(row.solution!);
    const rng = () => makePrng(`test-noise:${i}`);
    const out = corruptTrace(row.solution!, rng(), { noise: 0.4, noiseMax: 9 });
    assert.deepEqual(out, corruptTrace(row.solution!, rng(), { noise: 0.4, noiseMax: 9 }));
    if (out.step === null) {
      assert.equal(out.solution, row.solution);
      continue;
    }
    corrupted++;
    const noisy = parseTrace(out.solution);
    assert.equal(noisy.length, clean.length);
    const shift = Math.abs(noisy[out.step].c - clean[out.step].c);
    assert.ok(shift >= 1 && shift <= 9, `${row.id}: shift ${shift}`);
    assert.deepEqual(noisy.slice(0, out.step), clean.slice(0, out.step));
    assert.deepEqual(propagate(clean, out.step, noisy[out.step].c), noisy);
    assert.ok(out.solution.endsWith(`#### ${noisy.at(-1)!.c}`));
    if (noisy.at(-1)!.c !== Number(row.answer)) wrong++;
  }
  // 40 % of uses are drawn for corruption; a few fall back to clean (inexact divisions).
  assert.ok(corrupted > 0.3 * rows.length && corrupted <= 0.5 * rows.length, `${corrupted}`);
  // A shift can vanish in a later remainder; nearly always the final answer is wrong.
  assert.ok(wrong > 0.9 * corrupted, `${wrong} of ${corrupted} corrupted traces end wrong`);
  const never = corruptTrace(rows[0].solution!, makePrng("x"), { noise: 0, noiseMax: 9 });
  assert.deepEqual(never, { solution: rows[0].solution, step: null });
});

Deno.test("parseTrace() names the line that is not a<op>b=c", () => {
  assert.throws(() => parseTrace("7+8=15\n15 times 3=45\n#### 45"), /line 2 .* expected a<op>b=c/);
  assert.throws(() => parseTrace("7+8=15"), /does not end in a "#### N" line/);
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
