import assert from "node:assert/strict";
import {
  BOXED_EXTRACTION,
  extractAnswer,
  type ExtractorName,
  EXTRACTORS,
  OPENCOMPASS_V2_EXTRACTION,
  REWARD_EXTRACTION,
  summarizeExtractions,
  TINY_AIME_EXTRACTION,
} from "../../data/extract.ts";

const answer = (value: string, extractor: ExtractorName) => ({ kind: "answer", value, extractor });

Deno.test("extractAnswer() takes the last \\boxed{} with nested braces", () => {
  const text = "First \\boxed{1}. Then $x = \\boxed{\\frac{\\sqrt{3}}{2}}$ is final.";
  assert.deepEqual(extractAnswer(text, BOXED_EXTRACTION), answer("\\frac{\\sqrt{3}}{2}", "boxed"));
});

Deno.test("extractAnswer() reads \\fbox{}, brace-less \\boxed and strips one outer brace pair", () => {
  assert.deepEqual(extractAnswer("so \\fbox{42}", BOXED_EXTRACTION), answer("42", "boxed"));
  assert.deepEqual(extractAnswer("so \\boxed 7.", BOXED_EXTRACTION), answer("7.", "boxed"));
  assert.deepEqual(extractAnswer("\\boxed{{(1,2)}}", BOXED_EXTRACTION), answer("(1,2)", "boxed"));
  assert.deepEqual(extractAnswer("\\boxed{{1}+{2}}", BOXED_EXTRACTION), answer("{1}+{2}", "boxed"));
});

Deno.test("extractAnswer() treats a \\boxed{ cut off before its closing brace as unparsable", () => {
  assert.deepEqual(extractAnswer("the answer is \\boxed{\\frac{1}{2", { order: ["boxed"] }), {
    kind: "unparsable",
  });
});

Deno.test("extractAnswer() reads the last `Answer:` line (DAPO format)", () => {
  const text = "Answer: 3 is a guess\nwork...\nAnswer: $\\frac{1}{2}$\n";
  assert.deepEqual(extractAnswer(text, REWARD_EXTRACTION), answer("\\frac{1}{2}", "answer_line"));
  assert.deepEqual(
    extractAnswer("**Answer:** 12.", REWARD_EXTRACTION),
    answer("12", "answer_line"),
  );
  assert.deepEqual(extractAnswer("done, \\boxed{5}", REWARD_EXTRACTION), answer("5", "boxed"));
});

Deno.test("extractAnswer() reads `#### N` up to the end of its line", () => {
  assert.deepEqual(
    extractAnswer("12*3=36\n36-4=32\n#### 32", TINY_AIME_EXTRACTION),
    answer("32", "hash"),
  );
  assert.deepEqual(
    extractAnswer("#### 5\n#### 7\nextra", TINY_AIME_EXTRACTION),
    answer("7", "hash"),
  );
  assert.deepEqual(extractAnswer("12*3=36\n####", TINY_AIME_EXTRACTION), { kind: "unparsable" });
  assert.deepEqual(extractAnswer("12*3=36", TINY_AIME_EXTRACTION), { kind: "unparsable" });
});

Deno.test("extractAnswer() reads what follows the last `answer is`", () => {
  const config = { order: ["answer_is"] } as const;
  assert.deepEqual(
    extractAnswer("The answer is 5. The final answer is $12$.", config),
    answer("12", "answer_is"),
  );
  assert.deepEqual(
    extractAnswer("So the answer is: 3.5\nDone", config),
    answer("3.5", "answer_is"),
  );
  assert.deepEqual(
    extractAnswer("the answer is \\boxed{7} indeed", config),
    answer("7", "answer_is"),
  );
  assert.deepEqual(extractAnswer("no conclusion", config), { kind: "unparsable" });
});

Deno.test("extractAnswer() falls back to the last number only when configured", () => {
  const text = "We get 3 apples and 1,250 pears, then -2.5 or 7/8";
  assert.deepEqual(extractAnswer(text, { order: ["last_number"] }), answer("7/8", "last_number"));
  assert.deepEqual(
    extractAnswer("total 1,250,", { order: ["last_number"] }),
    answer("1,250", "last_number"),
  );
  assert.deepEqual(extractAnswer(text, BOXED_EXTRACTION), { kind: "unparsable" });
});

Deno.test("extractAnswer() tries extractors in order and honours tailChars", () => {
  const text = "\\boxed{1}\nAnswer: 2";
  assert.equal(
    (extractAnswer(text, { order: ["boxed", "answer_line"] }) as { value: string }).value,
    "1",
  );
  assert.equal(
    (extractAnswer(text, { order: ["answer_line", "boxed"] }) as { value: string }).value,
    "2",
  );
  const long = `\\boxed{9}${" ".repeat(400)}done`;
  assert.deepEqual(extractAnswer(long, { order: ["boxed"], tailChars: 300 }), {
    kind: "unparsable",
  });
});

Deno.test("extractAnswer() names an unknown extractor", () => {
  assert.throws(
    () => extractAnswer("x", { order: ["nope" as ExtractorName] }),
    /unknown extractor "nope"; expected one of boxed/,
  );
});

Deno.test("summarizeExtractions() counts answers per extractor and unparsable responses", () => {
  const results = ["\\boxed{1}", "Answer: 2", "nothing", "\\boxed{3}", ""].map((r) =>
    extractAnswer(r, REWARD_EXTRACTION)
  );
  assert.deepEqual(summarizeExtractions(results), {
    total: 5,
    answered: 3,
    unparsable: 2,
    unparsableRate: 0.4,
    byExtractor: { boxed: 2, answer_line: 1 },
  });
  assert.equal(summarizeExtractions([]).unparsableRate, 0);
  assert.deepEqual(Object.keys(EXTRACTORS), [
    "boxed",
    "answer_line",
    "hash",
    "answer_is",
    "last_number",
    "opencompass_v2",
  ]);
});

/**
 * [response, answer the harness extracts (null: nothing left)], by rule of OpenCompass's
 * `math_postprocess_v2`: its last box first, else a `.`-separated piece through the Minerva-style
 * normaliser.
 */
const HARNESS_CASES: Record<string, ReadonlyArray<readonly [string, string | null]>> = {
  "the last \\boxed{…} of the whole output, reasoning included, braces balanced": [
    [
      "First \\boxed{1}. Then $x = \\boxed{\\frac{\\sqrt{3}}{2}}$ is final.",
      "\\frac{\\sqrt{3}}{2}",
    ],
    ["<think>so \\boxed{7}, I think</think> The answer is 8.", "7"],
    ["\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"],
  ],
  "\\fbox only when there is no \\boxed, and its argument is not taken": [
    ["\\boxed{5} and then \\fbox{6}", "5"],
    // The last box is \fbox{42}, which is not `\boxed{`: the sentence rule reads the text.
    ["so \\fbox{42}", "so\\fbox{42}"],
    ["The final answer is \\fbox{42}.", "\\fbox{42}"],
  ],
  "one outer brace pair is removed, even one that does not pair up": [
    ["\\boxed{{(1,2)}}", "(1,2)"],
    ["\\boxed{{1}+{2}}", "1}+{2"],
    ["\\boxed{{5}\n}", "5"],
    // Two newlines after the pair: not removed (extractAnswer trims what is kept).
    ["\\boxed{{5}\n\n}", "{5}"],
  ],
  "a box that is cut off, empty or spaced goes to the sentence rule": [
    ["First \\boxed{3}. Then \\boxed{4", "First3"],
    ["\\boxed{} The answer is 6.", "6"],
    ["The answer is \\boxed {5}.", "5"],
  ],
  "no box: the first piece that says final answer / answer is, normalised": [
    ["The final answer is 5.", "5"],
    ["We add. The final answer is $1,000$ dollars.", "1000"],
    ["The answer is 3. Wait, the final answer is 4.", "3"],
    ["Thus the answer is: 12", "12"],
    // The cut at every `.` is literal.
    ["The final answer is 2.5.", "2"],
    // The marker is found in any case, the normaliser's own patterns only in lower case.
    ["So the ANSWER IS 7.", "SotheANSWERIS7"],
  ],
  "no box and no marker: the first piece, normalised": [
    ["We add the numbers. Then we get 12.", "Weaddthenumbers"],
    ["$x = 4$", "x=4"],
    ["", null],
    ["   ", null],
  ],
};

for (const [rule, cases] of Object.entries(HARNESS_CASES)) {
  Deno.test(`extractAnswer() under OPENCOMPASS_V2_EXTRACTION: ${rule}`, () => {
    for (const [response, expected] of cases) {
      assert.deepEqual(
        extractAnswer(response, OPENCOMPASS_V2_EXTRACTION),
        expected === null ? { kind: "unparsable" } : answer(expected, "opencompass_v2"),
        JSON.stringify(response),
      );
    }
  });
}
