/**
 * `deno task grade PRED GOLD [--mode lenient|opencompass-v2] [--rel-tol X]` prints `true` or
 * `false`: whether the predicted final answer equals the gold one under a grader mode
 * (data/grade/modes.ts; default `lenient`, which compares values; `opencompass-v2` applies the
 * string rules of the SENT paper's evaluation harness, so `0.5` and `\frac{1}{2}` differ there).
 *
 * A prediction (or gold answer) holding a `\boxed{…}` is graded by the content of its last box,
 * as the evaluation reads a response: `grade 'so \boxed{-5}.' -5` prints `true`.
 *
 * Answers often start with `-` (`-5`, `-\frac{1}{2}`, `-x`), so only `--name` flags and `-h` are
 * flags; every other argument is an answer, and everything after `--` is an answer too (for one
 * that starts with `--`). Usage errors are one line and exit 2; no answer text makes it fail.
 *
 * @module
 */

import { extractAnswer } from "./extract.ts";
import { DEFAULT_GRADER_MODE, GRADER_MODE_NAMES, graderFor } from "./grade/mod.ts";

const USAGE = `usage: deno task grade PRED GOLD [--mode ${
  GRADER_MODE_NAMES.join("|")
}] [--rel-tol X]   (prints true or false)`;

/** Flag → the value it takes, or null for a switch. */
const FLAGS: Readonly<Record<string, string | null>> = {
  mode: GRADER_MODE_NAMES.join("|"),
  "rel-tol": "X",
  help: null,
};

/** Parsed arguments, or the usage error. */
type Parsed = { answers: string[]; values: Record<string, string | true> } | { error: string };

/**
 * Split the arguments into answers and flags.
 *
 * @param args Command-line arguments.
 * @returns Answers and flag values, or a one-line error.
 */
function parse(args: readonly string[]): Parsed {
  const answers: string[] = [];
  const values: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      answers.push(...args.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      values.help = true;
      continue;
    }
    if (!arg.startsWith("--")) {
      answers.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (!Object.hasOwn(FLAGS, name)) {
      const list = Object.entries(FLAGS).map(([f, v]) => `--${f}${v ? ` ${v}` : ""}`).join(", ");
      return {
        error:
          `unknown flag --${name}; flags: ${list} (an answer that starts with -- goes after --)`,
      };
    }
    if (FLAGS[name] === null) {
      values[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) {
      return { error: `flag --${name} needs a value (--${name} ${FLAGS[name]})` };
    }
    values[name] = value;
  }
  return { answers, values };
}

/** The content of the last `\\boxed{…}` of an answer that has one, else the answer itself. */
function unboxed(answer: string): string {
  if (!answer.includes("\\boxed") && !answer.includes("\\fbox")) return answer;
  const found = extractAnswer(answer, { order: ["boxed"] });
  return found.kind === "answer" ? found.value : answer;
}

function main(args: readonly string[]): number {
  const parsed = parse(args);
  if ("error" in parsed) {
    console.error(`grade: ${parsed.error}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(USAGE);
    return 0;
  }
  if (parsed.answers.length !== 2) {
    console.error(
      `grade: expected 2 arguments (PRED GOLD), got ${parsed.answers.length}; ${USAGE}`,
    );
    return 2;
  }
  const mode = String(parsed.values.mode ?? DEFAULT_GRADER_MODE);
  if (!(GRADER_MODE_NAMES as readonly string[]).includes(mode)) {
    console.error(`grade: --mode is "${mode}"; expected one of ${GRADER_MODE_NAMES.join(", ")}`);
    return 2;
  }
  const raw = parsed.values["rel-tol"];
  const relTol = raw === undefined ? undefined : Number(raw);
  if (relTol !== undefined && !(relTol >= 0)) {
    console.error(`grade: --rel-tol must be a non-negative number, got "${raw}"`);
    return 2;
  }
  if (relTol !== undefined && mode !== "lenient") {
    console.error(`grade: --rel-tol applies to --mode lenient only (${mode} compares strings)`);
    return 2;
  }
  const [prediction, gold] = parsed.answers.map(unboxed);
  console.log(String(graderFor(mode, { relTol })(prediction, gold)));
  return 0;
}

Deno.exit(main(Deno.args));
