import assert from "node:assert/strict";
import {
  BOXED_EXTRACTION,
  REWARD_EXTRACTION,
  summarizeExtractions,
  TINY_AIME_EXTRACTION,
} from "../../data/extract.ts";
import { CORRECT_REWARD, reward, WRONG_REWARD } from "../../data/reward.ts";
import { generateTinyAime } from "../../data/tiny_aime/mod.ts";

interface Case {
  name: string;
  response: string;
  gold: string;
  reward: 1 | -1;
  answer: string | null;
}

const REAL_MODEL_CASES: Case[] = [
  { name: "Answer: line", response: "so...\nAnswer: 36", gold: "36", reward: 1, answer: "36" },
  {
    name: "Answer: line with $…$ and a fraction equal to a decimal",
    response: "work\nAnswer: $\\frac{3}{4}$",
    gold: "0.75",
    reward: 1,
    answer: "\\frac{3}{4}",
  },
  { name: "bold **Answer:**", response: "**Answer:** 12.", gold: "12", reward: 1, answer: "12" },
  {
    name: "\\boxed{} when there is no Answer: line",
    response: "hence x = \\boxed{0.5}.",
    gold: "\\frac{1}{2}",
    reward: 1,
    answer: "0.5",
  },
  {
    name: "the Answer: line wins over an earlier \\boxed{}",
    response: "guess \\boxed{4}\nAnswer: 3",
    gold: "4",
    reward: -1,
    answer: "3",
  },
  { name: "wrong answer", response: "Answer: 5", gold: "6", reward: -1, answer: "5" },
  { name: "no answer at all", response: "I am not sure.", gold: "7", reward: -1, answer: null },
  {
    name: "\\boxed{ cut off by the length limit",
    response: "so \\boxed{\\frac{1}{2",
    gold: "\\frac{1}{2}",
    reward: -1,
    answer: null,
  },
  {
    name: "thousands separator",
    response: "Answer: 1,000",
    gold: "1000",
    reward: 1,
    answer: "1,000",
  },
  {
    name: "#### is not read by default",
    response: "#### 36",
    gold: "36",
    reward: -1,
    answer: null,
  },
];

Deno.test("reward() scores real-model responses ±1 with the default Answer:/\\boxed{} extractor", () => {
  for (const c of REAL_MODEL_CASES) {
    const got = reward(c.response, c.gold);
    assert.equal(got.reward, c.reward, c.name);
    assert.equal(got.answer, c.answer, c.name);
    assert.equal(got.extraction.kind, c.answer === null ? "unparsable" : "answer", c.name);
  }
});

const TINY_CASES: Case[] = [
  { name: "#### N", response: "12*3=36\n#### 36", gold: "36", reward: 1, answer: "36" },
  { name: "last #### wins", response: "#### 5\n#### 7\nx", gold: "7", reward: 1, answer: "7" },
  { name: "wrong #### N", response: "12*3=36\n#### 35", gold: "36", reward: -1, answer: "35" },
  { name: "empty ####", response: "12*3=36\n####", gold: "36", reward: -1, answer: null },
  { name: "Answer: is not read", response: "Answer: 36", gold: "36", reward: -1, answer: null },
];

Deno.test("reward() with TINY_AIME_EXTRACTION reads only `#### N`", () => {
  for (const c of TINY_CASES) {
    const got = reward(c.response, c.gold, { extraction: TINY_AIME_EXTRACTION });
    assert.equal(got.reward, c.reward, c.name);
    assert.equal(got.answer, c.answer, c.name);
  }
});

Deno.test("reward() gives +1 to built-in traces ending in the gold answer, −1 to others", () => {
  const { rows } = generateTinyAime("tiny-aime24", { seed: 3, size: 40 });
  const options = { extraction: TINY_AIME_EXTRACTION };
  for (const row of rows) {
    const body = row.solution!.slice(0, row.solution!.lastIndexOf("####"));
    assert.equal(reward(`${body}#### ${row.answer}`, row.answer, options).reward, 1, row.id);
    const wrong = reward(`${body}#### ${Number(row.answer) + 1}`, row.answer, options);
    assert.deepEqual([wrong.reward, wrong.answer], [-1, String(Number(row.answer) + 1)], row.id);
    assert.deepEqual(reward(body, row.answer, options).answer, null, row.id); // cut off
  }
});

Deno.test("reward() honours the extractor order, the tail window and a custom grader", () => {
  const text = "Answer: 3\n... later \\boxed{4}";
  assert.equal(reward(text, "3", { extraction: REWARD_EXTRACTION }).answer, "3");
  assert.equal(reward(text, "4", { extraction: BOXED_EXTRACTION }).answer, "4");
  // DAPO's judge reads only the last 300 characters: an early Answer: line is then out of view.
  const long = `Answer: 9\n${"x".repeat(400)}`;
  assert.equal(reward(long, "9").reward, 1);
  const tail = reward(long, "9", { extraction: { ...REWARD_EXTRACTION, tailChars: 300 } });
  assert.deepEqual([tail.reward, tail.answer], [-1, null]);
  const exact = (p: string, g: string) => p === g;
  assert.equal(reward("Answer: 0.5", "\\frac{1}{2}", { equal: exact }).reward, -1);
  assert.equal(reward("Answer: 0.5", "\\frac{1}{2}").reward, 1);
});

Deno.test("reward() passes grade options to mathEqual", () => {
  // 3.1416 vs π: equal under a loose relative tolerance, not under a tight one.
  assert.equal(reward("Answer: 3.1416", "\\pi", { grade: { relTol: 1e-3 } }).reward, 1);
  assert.equal(reward("Answer: 3.1416", "\\pi", { grade: { relTol: 1e-9 } }).reward, -1);
});

Deno.test("reward() returns exactly 1 or -1 and its extractions feed summarizeExtractions()", () => {
  assert.deepEqual([CORRECT_REWARD, WRONG_REWARD], [1, -1]);
  const results = ["Answer: 1", "\\boxed{2}", "nothing"].map((r) => reward(r, "1"));
  assert.deepEqual(results.map((r) => r.reward), [1, -1, -1]);
  const summary = summarizeExtractions(results.map((r) => r.extraction));
  assert.deepEqual(summary.byExtractor, { answer_line: 1, boxed: 1 });
  assert.equal(summary.unparsable, 1);
});

Deno.test("reward() rejects an unknown extractor name", () => {
  assert.throws(
    // @ts-expect-error: "last_line" is not a registered extractor.
    () => reward("Answer: 1", "1", { extraction: { order: ["last_line"] } }),
    /unknown extractor "last_line"; expected one of boxed, answer_line/,
  );
});

Deno.test("reward() grades with the grader mode it is given, Answer: lines and \\boxed{} alike", () => {
  for (const response of ["work...\nAnswer: 0.5", "so \\boxed{0.5}"]) {
    assert.equal(reward(response, "\\frac{1}{2}").reward, 1, response);
    assert.equal(reward(response, "\\frac{1}{2}", { mode: "lenient" }).reward, 1, response);
    assert.equal(reward(response, "\\frac{1}{2}", { mode: "opencompass-v2" }).reward, -1, response);
    assert.equal(reward(response, "0.5", { mode: "opencompass-v2" }).reward, 1, response);
  }
  assert.throws(() => reward("Answer: 1", "1", { mode: "strict" }), /unknown grader mode "strict"/);
});
