import assert from "node:assert/strict";
import { answerCoverage, type Coverage, mathEqual } from "../../data/grade/mod.ts";
import { readJsonl } from "../../data/load_jsonl.ts";
import { BENCHMARKS, needsBenchmarks } from "../_benchmarks.ts";

const DATASETS = BENCHMARKS;

/**
 * A value-changing edit: the first digit goes up by one (9 → 0); an answer without digits gets
 * `+1` appended. Either way the perturbed answer denotes a different value.
 */
function perturb(answer: string): string {
  const m = /\d/.exec(answer);
  if (m === null) return `${answer}+1`;
  return answer.slice(0, m.index) + String((Number(m[0]) + 1) % 10) + answer.slice(m.index + 1);
}

const files = DATASETS === null
  ? []
  : [...Deno.readDirSync(DATASETS)].map((e) => e.name).filter((n) => n.endsWith(".jsonl")).sort();
const golds: Array<{ file: string; line: number; answer: string }> = [];
for (const file of files) {
  for (const { line, value } of await readJsonl(`${DATASETS}/${file}`)) {
    golds.push({ file, line, answer: String(value.answer) });
  }
}

Deno.test(
  needsBenchmarks(`mathEqual() grades every shared gold answer (${golds.length}) equal to itself`),
  () => {
    const failures = golds.filter((g) => !mathEqual(g.answer, g.answer)).map((g) =>
      `${g.file}:${g.line}`
    );
    assert.deepEqual(failures, []);
  },
);

Deno.test(
  needsBenchmarks(
    "mathEqual() grades every shared gold answer equal to itself in `$…$` with extra spaces",
  ),
  () => {
    const failures = golds.filter((g) => !mathEqual(`$ ${g.answer} $`, g.answer)).map((g) =>
      `${g.file}:${g.line} ${g.answer}`
    );
    assert.deepEqual(failures, []);
  },
);

Deno.test(
  needsBenchmarks("mathEqual() grades every shared gold answer different from a perturbed value"),
  () => {
    const failures = golds.filter((g) => mathEqual(perturb(g.answer), g.answer))
      .map((g) =>
        `${g.file}:${g.line} ${JSON.stringify(g.answer)} vs ${JSON.stringify(perturb(g.answer))}`
      );
    assert.deepEqual(failures, []);
  },
);

Deno.test(
  needsBenchmarks(
    "mathEqual() matches integer gold answers written with leading zeros and as decimals",
  ),
  () => {
    const integers = golds.filter((g) => /^\d+$/.test(g.answer));
    assert.ok(integers.length > 4000);
    const failures = integers.filter((g) =>
      !mathEqual(`0${g.answer}`, g.answer) || !mathEqual(`${g.answer}.0`, g.answer)
    )
      .map((g) => `${g.file}:${g.line}`);
    assert.deepEqual(failures, []);
  },
);

Deno.test(
  needsBenchmarks("answerCoverage() parses all but a small share of shared gold answers"),
  () => {
    const counts: Record<Coverage, number> = { number: 0, expression: 0, "string-only": 0 };
    for (const g of golds) counts[answerCoverage(g.answer)]++;
    console.log(`gold answers: ${golds.length}; coverage ${JSON.stringify(counts)}`);
    assert.equal(counts.number + counts.expression + counts["string-only"], golds.length);
    // Base-n numerals, ratios, inequalities and prose answers are compared as normalised strings.
    assert.ok(
      counts["string-only"] / golds.length < 0.02,
      `string-only share ${counts["string-only"]}`,
    );
    for (
      const [answer, want] of [["2215_6", "string-only"], ["\\frac{1}{2}", "number"], [
        "2x+3",
        "expression",
      ]] as const
    ) {
      assert.equal(answerCoverage(answer), want, answer);
    }
  },
);
