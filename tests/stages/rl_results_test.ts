import assert from "node:assert/strict";
import { TINY_AIME_EXTRACTION } from "../../data/extract.ts";
import { reward } from "../../data/reward.ts";
import { generateTinyAime } from "../../data/tiny_aime/mod.ts";
import { Rng } from "../../pipeline/rng.ts";
import { passAtK } from "../../stages/_rl/pass_at_k.ts";
import {
  assembleResults,
  DEFAULT_KS,
  meanAndSe,
  type ProblemSamples,
  type Results,
  RESULTS_SCHEMA,
  ResultsSchemaError,
  seedResult,
  validateResults,
} from "../../stages/_rl/results.ts";
import { makeTestDir } from "../_tmp.ts";

/**
 * A simulated evaluation run on real built-in problems: each of n samples is the problem's trace
 * ending in the gold answer, in a wrong answer, or cut before its answer line, drawn with a
 * seeded RNG; the real reward function grades them.
 */
function simulatedRun(seed: string, n: number, skill: number): ProblemSamples[] {
  const { rows } = generateTinyAime("tiny-aime24", { seed: 0, size: 12 });
  const rng = Rng.fromSeed(`results-test/${seed}`);
  return rows.map((row) => {
    const responses = Array.from({ length: n }, () => {
      const u = rng.float();
      const body = row.solution!.slice(0, row.solution!.lastIndexOf("####"));
      if (u < skill) return `${body}#### ${row.answer}`;
      return u < skill + (1 - skill) / 2 ? `${body}#### ${Number(row.answer) + 1}` : body;
    });
    const graded = responses.map((r) =>
      reward(r, row.answer, { extraction: TINY_AIME_EXTRACTION })
    );
    return {
      id: row.id,
      correct: graded.map((g) => g.reward === 1),
      answers: graded.map((g) => g.answer),
    };
  });
}

function runAll(): Results {
  const entries = [];
  for (const [policy, skill] of [["base", 0.2], ["sent", 0.5]] as const) {
    for (const seed of [1, 2, 3]) {
      const run = seedResult(simulatedRun(`${policy}/${seed}`, 16, skill), DEFAULT_KS);
      entries.push({ set: "tiny-aime24", policy, seed, seedResult: { ...run, greedy: 12.5 } });
    }
  }
  return assembleResults(entries, DEFAULT_KS);
}

Deno.test("seedResult() computes pass@k and avg@k for every k ≤ n and counts c per problem", () => {
  const r = seedResult([
    { id: "p1", correct: [false, true, false, false], answers: ["1", "2", null, "3"], len: [5] },
    { id: "p2", correct: [true, true, true, true], answers: ["2", "2", "2", "2"] },
  ], [1, 2, 4, 8]);
  assert.equal(r.n, 4);
  assert.deepEqual(r["pass@k"], { "1": (25 + 100) / 2, "2": (50 + 100) / 2, "4": 100 });
  assert.deepEqual(r["avg@k"], { "1": 50, "2": 75, "4": 62.5 });
  assert.deepEqual(r.problems[0], {
    id: "p1",
    n: 4,
    c: 1,
    correct: [false, true, false, false],
    answers: ["1", "2", null, "3"],
    len: [5],
  });
  assert.equal(r.problems[1].c, 4);
});

Deno.test("assembleResults() writes exactly the sent-results/1 layout", () => {
  const results = runAll();
  assert.equal(results.schema, RESULTS_SCHEMA);
  assert.deepEqual(results.ks, [1, 2, 4, 8, 16]);
  assert.deepEqual(Object.keys(results), ["schema", "ks", "sets"]);
  assert.deepEqual(Object.keys(results.sets), ["tiny-aime24"]);
  assert.deepEqual(Object.keys(results.sets["tiny-aime24"]), ["base", "sent"]);
  const policy = results.sets["tiny-aime24"].sent;
  assert.deepEqual(Object.keys(policy), ["seeds", "mean", "se"]);
  assert.deepEqual(Object.keys(policy.seeds), ["1", "2", "3"]);
  const seed = policy.seeds["2"];
  assert.deepEqual(Object.keys(seed), ["n", "pass@k", "avg@k", "problems", "greedy"]);
  assert.equal(seed.n, 16);
  assert.deepEqual(Object.keys(seed["pass@k"]), ["1", "2", "4", "8", "16"]);
  assert.deepEqual(Object.keys(seed["avg@k"]), ["1", "2", "4", "8", "16"]);
  assert.deepEqual(Object.keys(seed.problems[0]), ["id", "n", "c", "correct", "answers"]);
  for (const part of [policy.mean, policy.se]) {
    assert.deepEqual(Object.keys(part), ["pass@k", "avg@k"]);
    assert.deepEqual(Object.keys(part["pass@k"]), ["1", "2", "4", "8", "16"]);
  }
  // Wrong answers are recorded as text, cut traces as null.
  const answers = seed.problems.flatMap((p) => p.answers);
  assert.ok(answers.includes(null) && answers.some((a) => typeof a === "string"));
});

Deno.test("results.json round-trips through a file and its pass@k recomputes from the records", async () => {
  const results = runAll();
  const dir = await makeTestDir("rl-results");
  await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(results, null, 2));
  const read = validateResults(JSON.parse(await Deno.readTextFile(`${dir}/results.json`)));
  assert.deepEqual(read, results);
  for (const policy of Object.values(read.sets["tiny-aime24"])) {
    for (const seed of Object.values(policy.seeds)) {
      for (const k of read.ks) {
        // Independently: per problem c = count of true, pass@k from the estimator, then percent.
        const mean = seed.problems.reduce(
          (s, p) => s + passAtK(p.correct.length, p.correct.filter(Boolean).length, k),
          0,
        ) / seed.problems.length;
        assert.ok(Math.abs(seed["pass@k"][String(k)] - 100 * mean) < 1e-9, `pass@${k}`);
        const firstK = seed.problems.reduce(
          (s, p) => s + p.correct.slice(0, k).filter(Boolean).length / k,
          0,
        ) / seed.problems.length;
        assert.ok(Math.abs(seed["avg@k"][String(k)] - 100 * firstK) < 1e-9, `avg@${k}`);
      }
      // With n = 16 and k = 16, pass@16 is the share of problems with at least one correct.
      const solved = seed.problems.filter((p) => p.c > 0).length / seed.problems.length;
      assert.ok(Math.abs(seed["pass@k"]["16"] - 100 * solved) < 1e-9);
    }
  }
  // The better simulated policy scores higher on average.
  const avg1 = (p: string) => read.sets["tiny-aime24"][p].mean["avg@k"]["1"];
  assert.ok(avg1("sent") > avg1("base"), `${avg1("sent")} vs ${avg1("base")}`);
});

Deno.test("assembleResults() takes mean and se over seeds, se = sample std / √seeds, 0 for one", () => {
  const run = (c: boolean[]) =>
    seedResult([{ id: "p", correct: c, answers: c.map(String) }], [1, 2]);
  const out = assembleResults([
    { set: "s", policy: "m", seed: 1, seedResult: run([true, true]) },
    { set: "s", policy: "m", seed: 2, seedResult: run([true, false]) },
    { set: "s", policy: "m", seed: 3, seedResult: run([false, false]) },
    { set: "s", policy: "one", seed: 7, seedResult: run([true, false]) },
  ], [1, 2]);
  const m = out.sets.s.m;
  assert.deepEqual(m.mean["avg@k"], { "1": (100 + 100 + 0) / 3, "2": 50 });
  // avg@2 per seed: 100, 50, 0 → std 50 → se 50/√3.
  assert.ok(Math.abs(m.se["avg@k"]["2"] - 50 / Math.sqrt(3)) < 1e-12);
  assert.deepEqual(m.mean["pass@k"], { "1": 50, "2": (100 + 100 + 0) / 3 });
  assert.deepEqual(out.sets.s.one.se, {
    "pass@k": { "1": 0, "2": 0 },
    "avg@k": { "1": 0, "2": 0 },
  });
  assert.deepEqual(meanAndSe([40, 50, 60]).mean, 50);
  assert.ok(Math.abs(meanAndSe([40, 50, 60]).se - 10 / Math.sqrt(3)) < 1e-12);
  assert.throws(() => meanAndSe([]), /meanAndSe: no values/);
});

Deno.test("assembleResults() leaves k > n out, and averages only the k values every seed has", () => {
  const run = (n: number) =>
    seedResult([{ id: "p", correct: Array(n).fill(true), answers: Array(n).fill("1") }], [1, 4, 8]);
  const out = assembleResults([
    { set: "s", policy: "m", seed: 1, seedResult: run(8) },
    { set: "s", policy: "m", seed: 2, seedResult: run(4) },
  ], [1, 4, 8]);
  assert.deepEqual(Object.keys(out.sets.s.m.seeds["1"]["pass@k"]), ["1", "4", "8"]);
  assert.deepEqual(Object.keys(out.sets.s.m.seeds["2"]["pass@k"]), ["1", "4"]);
  assert.deepEqual(out.sets.s.m.mean["pass@k"], { "1": 100, "4": 100 });
});

Deno.test("seedResult() and assembleResults() reject inconsistent input, naming it", () => {
  const p = (id: string, correct: boolean[]): ProblemSamples => ({
    id,
    correct,
    answers: correct.map(() => null),
  });
  assert.throws(() => seedResult([], [1]), /seedResult: no problems/);
  assert.throws(
    () => seedResult([p("a", [true, false]), p("b", [true])], [1]),
    /problem "b" has 1 samples; expected n = 2 like "a"/,
  );
  assert.throws(
    () => seedResult([{ id: "a", correct: [true], answers: [] }], [1]),
    /problem "a" has 0 answers for 1 samples/,
  );
  assert.throws(() => seedResult([p("a", [true]), p("a", [false])], [1]), /id "a" appears twice/);
  assert.throws(
    () => seedResult([{ ...p("a", [true, false]), c: 2 }], [1]),
    /says c = 2; it has 1/,
  );
  assert.throws(() => seedResult([{ ...p("a", [true]), n: 3 }], [1]), /says n = 3; it has 1/);
  assert.throws(
    () => seedResult([p("a", [true])], [2, 1]),
    /ks \[2,1\] has 1 at 1; expected strictly/,
  );
  assert.throws(() => seedResult([p("a", [])], [1]), /problem "a" has no samples/);
  const run = seedResult([p("a", [true])], [1]);
  assert.throws(
    () =>
      assembleResults([
        { set: "s", policy: "m", seed: 1, seedResult: run },
        { set: "s", policy: "m", seed: "1", seedResult: run },
      ], [1]),
    /set "s", policy "m", seed 1 appears twice/,
  );
});

Deno.test("validateResults() names the first bad path, the value and what was expected", () => {
  const good = () => JSON.parse(JSON.stringify(runAll()));
  const seedPath = "sets.tiny-aime24.sent.seeds.1";
  const cases: Array<[(r: Results) => void, RegExp]> = [
    [
      (r) => (r.schema = "sent-results/2" as typeof RESULTS_SCHEMA),
      /schema is "sent-results\/2"; expected "sent-results\/1"/,
    ],
    [(r) => (r.ks = [1, 4, 2]), /ks.2 is 2; expected strictly ascending/],
    [
      (r) => delete (r.sets["tiny-aime24"].sent.seeds["1"] as Record<string, unknown>).n,
      new RegExp(`${seedPath}.n is missing`),
    ],
    [
      (r) => delete r.sets["tiny-aime24"].sent.seeds["1"]["pass@k"]["8"],
      /pass@k has keys \[1,2,4,16\]; expected \[1,2,4,8,16\]/,
    ],
    [
      (r) => (r.sets["tiny-aime24"].sent.seeds["1"]["avg@k"]["2"] = 101),
      /avg@k.2 is 101; expected a percentage/,
    ],
    [
      (r) => (r.sets["tiny-aime24"].sent.seeds["1"]["pass@k"]["4"] += 1),
      /pass@k.4 is [\d.]+; the records give/,
    ],
    [
      (r) => r.sets["tiny-aime24"].sent.seeds["1"].problems[3].correct.pop(),
      /problems.3.correct is an array of 15; expected an array of 16/,
    ],
    [
      (r) => (r.sets["tiny-aime24"].sent.seeds["1"].problems[0].c += 1),
      /problems.0.c is \d+; expected \d+ \(the number of true in correct\)/,
    ],
    [
      (r) => ((r.sets["tiny-aime24"].sent.seeds["1"].problems[0].answers as unknown[])[5] = 7),
      /problems.0.answers.5 is 7; expected a string or null/,
    ],
    [
      (
        r,
      ) => (r.sets["tiny-aime24"].sent.seeds["1"].problems[1].id =
        r.sets["tiny-aime24"].sent.seeds["1"].problems[0].id),
      /problems.1.id ".*" appears twice/,
    ],
    [
      (r) => (r.sets["tiny-aime24"].base.mean["pass@k"]["1"] += 0.5),
      /base.mean.pass@k.1 is [\d.]+; the records give/,
    ],
    [
      (r) => delete r.sets["tiny-aime24"].base.se["avg@k"]["16"],
      /base.se.avg@k has keys \[1,2,4,8\]; expected \[1,2,4,8,16\]/,
    ],
    [(r) => (r.sets["tiny-aime24"].base.seeds = {}), /base.seeds is empty/],
  ];
  for (const [mutate, message] of cases) {
    const r = good();
    mutate(r);
    assert.throws(() => validateResults(r), (e: unknown) => {
      assert.ok(e instanceof ResultsSchemaError, String(e));
      assert.match(e.message, /^results\.json: /);
      assert.match(e.message, message);
      return true;
    });
  }
  assert.throws(
    () => validateResults([]),
    /results.json: \(root\) is an array; expected an object/,
  );
  assert.deepEqual(
    validateResults({ schema: RESULTS_SCHEMA, ks: [1], sets: {}, note: "x" }).sets,
    {},
  );
});
