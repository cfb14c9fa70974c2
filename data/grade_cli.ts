/**
 * `deno task grade PRED GOLD [--rel-tol X]` prints `true` or `false`: whether the predicted final
 * answer is mathematically equivalent to the gold one.
 *
 * Answers often start with `-` (`-5`, `-\frac{1}{2}`, `-x`), so only `--name` flags and `-h` are
 * flags; every other argument is an answer, and everything after `--` is an answer too (for one
 * that starts with `--`). Usage errors are one line and exit 2.
 *
 * @module
 */

import { mathEqual } from "./grade/mod.ts";

const USAGE = "usage: deno task grade PRED GOLD [--rel-tol X]   (prints true or false)";

/** Flag → the value it takes, or null for a switch. */
const FLAGS: Readonly<Record<string, string | null>> = { "rel-tol": "X", help: null };

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
  const raw = parsed.values["rel-tol"];
  const relTol = raw === undefined ? undefined : Number(raw);
  if (relTol !== undefined && !(relTol >= 0)) {
    console.error(`grade: --rel-tol must be a non-negative number, got "${raw}"`);
    return 2;
  }
  console.log(String(mathEqual(parsed.answers[0], parsed.answers[1], { relTol })));
  return 0;
}

Deno.exit(main(Deno.args));
