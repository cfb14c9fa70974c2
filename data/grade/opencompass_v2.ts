/**
 * The `opencompass-v2` grader: answer equivalence exactly as the SENT paper's evaluation harness
 * (OpenCompass, `MATHEvaluator(version="v2")`) decides it, so numbers graded here can be set next
 * to the paper's tables.
 *
 * Two string rewrites, each an ordered table of small rules, and four checks in order:
 *
 * ```
 * equal(pred, gold) = (a) stripV2(pred) == stripV2(gold)
 *                  or (b) normalize(stripV2(pred)) == normalize(stripV2(gold))
 *                  or (c) normalize(pred) == normalize(gold)
 *                  or (d) pred == gold
 * ```
 *
 * A rule that fails (the harness raises an exception: `a/b` with a part that is not an integer
 * literal) skips the check it belongs to, and the next one is tried, as in the harness.
 *
 * There is no arithmetic: strings are compared, so `0.5` and `\frac{1}{2}` differ, `0.50` and
 * `0.5` differ, `1,000` and `1000` are equal (a rule of `normalize`), and the rules' quirks are
 * kept on purpose: the word `and` is deleted anywhere (`3 and 4` equals `34`), `\cdot` is deleted
 * (`2\cdot3` equals `23`), and a prefix of at most two characters before a single `=` is dropped
 * (`x = 5` equals `5`, `ab = 5` does not: the prefix is `"ab "` with its space). The lenient
 * grader (`equal.ts`) is the one to use when a number should mean "mathematically right".
 *
 * @example
 * ```ts
 * import { opencompassV2Equal } from "./opencompass_v2.ts";
 * opencompassV2Equal("\\dfrac{1}{2}", "\\frac12"); // true
 * opencompassV2Equal("0.5", "\\frac{1}{2}"); // false
 * ```
 *
 * @module
 */

/** A rewrite rule: what it does, in words, and the rewrite. */
export interface RewriteRule {
  /** One line: what the rule changes. */
  readonly does: string;
  /** The rewrite; it may throw {@link RuleFailure}. */
  readonly apply: (text: string) => string;
}

/** A rule that cannot rewrite its input (the harness raised): the check it was part of fails. */
export class RuleFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RuleFailure";
  }
}

/** Delete every occurrence of each string, in order. */
const drop = (...parts: string[]) => (s: string) => parts.reduce((t, p) => t.replaceAll(p, ""), s);

/** Python's `str.isdigit()` on the characters we meet: decimal digits and super/subscripts. */
const ALL_DIGITS = /^[\p{Nd}\u00b2\u00b3\u00b9\u2070\u2074-\u2079\u2080-\u2089]+$/u;

/** Characters of Python's `\w`: letters, numbers, underscore. */
const WORD = "[\\p{L}\\p{N}_]";

/**
 * `\frac` shorthand: after each `\frac`, a part that does not start with `{` has its first two
 * characters braced (`\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}`); a part shorter
 * than two characters leaves the whole text as it was.
 */
function fixFracs(text: string): string {
  const [head, ...parts] = text.split("\\frac");
  let out = head;
  for (const part of parts) {
    out += "\\frac";
    const chars = [...part];
    if (chars[0] === "{") {
      out += part;
      continue;
    }
    if (chars.length < 2) return text;
    const [a, b, ...rest] = chars;
    out += b === "{" ? `{${a}}${b}${rest.join("")}` : `{${a}}{${b}}${rest.join("")}`;
  }
  return out;
}

/** A Python `int()` literal: optional spaces and sign, digits with single underscores between. */
const PY_INT = /^\s*[+-]?\p{Nd}+(?:_\p{Nd}+)*\s*$/u;
/** An integer as Python prints it. */
const CANONICAL_INT = /^(?:0|-?[1-9][0-9]*)$/;

/**
 * `a/b` with integer parts written plainly → `\frac{a}{b}`. A part that is not an integer literal
 * at all (`x/2`) is a {@link RuleFailure}, as it is in the harness; one that is an integer
 * written another way (`+3/4`, `03/4`) leaves the text unchanged.
 */
function fixSlash(text: string): string {
  const parts = text.split("/");
  if (parts.length !== 2) return text;
  const [a, b] = parts;
  if (!PY_INT.test(a) || !PY_INT.test(b)) {
    throw new RuleFailure(`"${text}": ${PY_INT.test(a) ? b : a} is not an integer`);
  }
  return CANONICAL_INT.test(a) && CANONICAL_INT.test(b) ? `\\frac{${a}}{${b}}` : text;
}

/** A short left-hand side (≤ 2 characters, spaces included) before a single `=` is dropped. */
function dropShortLhs(text: string): string {
  const sides = text.split("=");
  return sides.length === 2 && [...sides[0]].length <= 2 ? sides[1] : text;
}

/** The harness's `_strip_string_v2`, rule by rule, in its order. */
export const STRIP_V2_RULES: readonly RewriteRule[] = [
  { does: "trim surrounding whitespace", apply: (s) => s.trim() },
  { does: "drop newlines", apply: drop("\n") },
  { does: "drop trailing periods", apply: (s) => s.replace(/(?<!\.)\.+$/, "") },
  { does: "drop the spacing commands \\! and \\ (backslash space)", apply: drop("\\!", "\\ ") },
  {
    does: "collapse \\\\ to \\ (twice)",
    apply: (s) => s.replaceAll("\\\\", "\\").replaceAll("\\\\", "\\"),
  },
  {
    does: "tfrac and dfrac become frac",
    apply: (s) => s.replaceAll("tfrac", "frac").replaceAll("dfrac", "frac"),
  },
  { does: "drop \\left and \\right", apply: drop("\\left", "\\right") },
  {
    does: "drop a trailing \\text{…} unit (from the first \\text{ on), unless nothing is left",
    apply: (s) => {
      const cut = s.replace(/\\text\{[^\n]*?\}$/, "").trim();
      return cut !== "" && cut !== s ? cut : s;
    },
  },
  { does: "drop degree marks ^{\\circ} and ^\\circ", apply: drop("^{\\circ}", "^\\circ") },
  { does: "drop dollar signs (\\$ and $)", apply: drop("\\$", "$") },
  { does: "drop \\text and x\\in", apply: drop("\\text", "x\\in") },
  { does: "drop percent signs (\\% and %)", apply: drop("\\%", "%") },
  {
    does: "a decimal point after a space or { gets a leading 0",
    apply: (s) => s.replaceAll(" .", " 0.").replaceAll("{.", "{0."),
  },
  { does: "drop \\cdot", apply: drop("\\cdot") },
  {
    does: "infinity (and inf, when no \\infty is left) becomes \\infty",
    apply: (s) => {
      let t = s.replaceAll("infinity", "\\infty");
      if (!t.includes("\\infty")) t = t.replaceAll("inf", "\\infty");
      return t.replaceAll("+\\inity", "\\infty");
    },
  },
  { does: "drop the letters `and` wherever they appear", apply: drop("and") },
  { does: "drop \\mathbf", apply: drop("\\mathbf") },
  { does: "drop \\mbox{…}", apply: (s) => s.replace(/\\mbox\{[^\n]*?\}/g, "") },
  // The harness's quote rule discards its result (`string.replace(...)` unassigned): quotes stay.
  {
    does: "j becomes i when there is no i (imaginary unit)",
    apply: (s) => s.includes("j") && !s.includes("i") ? s.replaceAll("j", "i") : s,
  },
  {
    does: "12.000 becomes 12 (zeros after a decimal point, before a non-digit or the end)",
    apply: (s) =>
      // `(?<!\p{Nd})`: a match can only start where a run of digits starts (the harness's
      // pattern finds the same matches, but tries every digit and is quadratic in a long run).
      s.replace(/(?<!\p{Nd})(\p{Nd}+)\.0+([^\p{Nd}])/gu, "$1$2")
        .replace(/(?<!\p{Nd})(\p{Nd}+)\.0+$/u, "$1"),
  },
  { does: "a leading decimal point gets a 0", apply: (s) => s.startsWith(".") ? `0${s}` : s },
  { does: "drop a left-hand side of ≤ 2 characters before a single =", apply: dropShortLhs },
  {
    does: "\\sqrtX becomes \\sqrt{X} (X: the word characters that follow)",
    apply: (s) => s.replace(new RegExp(`\\\\sqrt(${WORD}+)`, "gu"), "\\sqrt{$1}"),
  },
  { does: "drop spaces", apply: drop(" ") },
  { does: "\\fracab becomes \\frac{a}{b}", apply: fixFracs },
  {
    does: "an integer a/b becomes \\frac{a}{b} (fails when a part is no integer)",
    apply: fixSlash,
  },
];

/** Literal substitutions at the start of `normalize`, in order (Minerva's normaliser). */
const SUBSTITUTIONS: readonly (readonly [string, string])[] = [
  ["an ", ""],
  ["a ", ""],
  [".$", "$"],
  ["\\$", ""],
  ["\\ ", ""],
  [" ", ""],
  ["mbox", "text"],
  [",\\text{and}", ","],
  ["\\text{and}", ","],
  ["\\text{m}", "\\text{}"],
  ["\\le", "<"],
];

/** Filler words, units and LaTeX leftovers deleted anywhere in the text, in order. */
export const REMOVED_EXPRESSIONS: readonly string[] = [
  "square",
  "ways",
  "integers",
  "dollars",
  "mph",
  "inches",
  "ft",
  "hours",
  "km",
  "units",
  "\\ldots",
  "sue",
  "points",
  "feet",
  "minutes",
  "digits",
  "cents",
  "degrees",
  "cm",
  "gm",
  "pounds",
  "meters",
  "meals",
  "edges",
  "students",
  "childrentickets",
  "multiples",
  "\\text{s}",
  "\\text{.}",
  "\\text{\ns}",
  "\\text{}^2",
  "\\text{}^3",
  "\\text{\n}",
  "\\text{}",
  "\\mathrm{th}",
  "^\\circ",
  "^{\\circ}",
  "\\;",
  ",\\!",
  "{,}",
  '"',
  "\\dots",
  "\n",
  "\r",
  "\f",
];

/** The text after the first match of `pattern` (group 1), or the text itself. */
const after = (pattern: RegExp) => (s: string) => pattern.exec(s)?.[1] ?? s;

/** Group 1 of the last match of a global `pattern`, or the text itself. */
const lastOf = (pattern: RegExp) => (s: string) => [...s.matchAll(pattern)].at(-1)?.[1] ?? s;

/** The harness's `normalize_final_answer` (Minerva-style), rule by rule, in its order. */
export const NORMALIZE_RULES: readonly RewriteRule[] = [
  {
    does: "literal substitutions: articles, spaces, \\$, mbox → text, \\text{and} → ',', \\le → <",
    apply: (s) => SUBSTITUTIONS.reduce((t, [from, to]) => t.replaceAll(from, to), s),
  },
  {
    does: "delete filler words and units (REMOVED_EXPRESSIONS)",
    apply: drop(...REMOVED_EXPRESSIONS),
  },
  {
    does: "unwrap \\text{(X)}, \\text{X}, \\textbf{X}, \\overline{X} and \\boxed{X}",
    apply: (s) =>
      s.replace(/\\text\{\(([^\n]*?)\)\}/g, "$1")
        .replace(/\\text\{([^\n]*?)\}/g, "$1")
        .replace(/\\textbf\{([^\n]*?)\}/g, "$1")
        .replace(/\\overline\{([^\n]*?)\}/g, "$1")
        .replace(/\\boxed\{([^\n]*)\}/g, "$1"),
  },
  { does: "keep what follows `finalansweris`", apply: after(/finalansweris([^\n]*)/) },
  {
    does: "keep what follows `answeris` (or `answeis`), a colon dropped",
    apply: after(/answer?is:?([^\n]*)/),
  },
  { does: "keep the content of the last oxed{…}", apply: lastOf(/oxed\{([^\n]*?)\}/g) },
  { does: "keep the content of the last $…$", apply: lastOf(/\$([^\n]*?)\$/g) },
  { does: "trim surrounding whitespace", apply: (s) => s.trim() },
  {
    does: "rac becomes \\frac when no \\frac is there",
    apply: (s) => s.includes("rac") && !s.includes("\\frac") ? s.replaceAll("rac", "\\frac") : s,
  },
  {
    does: "fracab becomes frac{a}{b}, sqrta becomes sqrt{a}",
    apply: (s) =>
      s.replace(/frac([^{])([^\n])/g, "frac{$1}{$2}").replace(/sqrt([^{])/g, "sqrt{$1}"),
  },
  { does: "drop dollar signs", apply: drop("$") },
  {
    does: "drop the commas of a number written only with digits and commas",
    apply: (s) => ALL_DIGITS.test(s.replaceAll(",", "")) ? s.replaceAll(",", "") : s,
  },
];

/** Run a rule table over a text. */
function rewrite(rules: readonly RewriteRule[], text: string): string {
  return rules.reduce((t, rule) => rule.apply(t), text);
}

/**
 * The harness's `strip_v2` rewrite of an answer.
 *
 * @param answer Answer text.
 * @returns The stripped text.
 * @throws RuleFailure when the `a/b` rule meets a part that is not an integer (e.g. `x/2`).
 * @example
 * ```ts
 * stripV2("\\left( \\dfrac{1}{2}, 3 \\right)"); // "(\\frac{1}{2},3)"
 * ```
 */
export function stripV2(answer: string): string {
  return rewrite(STRIP_V2_RULES, answer);
}

/**
 * The harness's `normalize_final_answer` rewrite of an answer.
 *
 * @param answer Answer text.
 * @returns The normalised text.
 * @example
 * ```ts
 * normalizeV2("The final answer is $1,000$ dollars"); // "1000"
 * ```
 */
export function normalizeV2(answer: string): string {
  return rewrite(NORMALIZE_RULES, answer);
}

/** The four checks of the harness, in order; a check whose rewrite fails counts as false. */
const CHECKS: readonly { does: string; holds: (p: string, g: string) => boolean }[] = [
  { does: "(a) strip_v2 equal", holds: (p, g) => stripV2(p) === stripV2(g) },
  {
    does: "(b) normalize(strip_v2) equal",
    holds: (p, g) => normalizeV2(stripV2(p)) === normalizeV2(stripV2(g)),
  },
  { does: "(c) normalize equal", holds: (p, g) => normalizeV2(p) === normalizeV2(g) },
  { does: "(d) raw strings equal", holds: (p, g) => p === g },
];

/**
 * Are a predicted and a gold answer equal by the rules of OpenCompass's v2 math evaluator?
 *
 * @param prediction Extracted answer of a response.
 * @param gold Gold answer.
 * @returns True when one of the checks (a)–(d) holds. Never throws.
 * @example
 * ```ts
 * opencompassV2Equal("1,000", "1000"); // true: normalize drops the commas
 * opencompassV2Equal("0.5", "\\frac{1}{2}"); // false: no arithmetic
 * ```
 */
export function opencompassV2Equal(prediction: string, gold: string): boolean {
  return CHECKS.some((check) => {
    try {
      return check.holds(prediction, gold);
    } catch {
      // The harness catches every exception of a check and moves on to the next.
      return false;
    }
  });
}
