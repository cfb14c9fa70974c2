/**
 * LaTeX-noise removal for final answers: one ordered table of rewrite rules, applied to both the
 * prediction and the gold answer before they are compared.
 *
 * What it removes or rewrites: `$` delimiters, `\left`/`\right` and spacing commands, `\dfrac` /
 * `\tfrac`, degree marks, percent signs (remembered), `\text{…}`-style wrappers, unit words,
 * thousands separators, `\sqrt2` / `\frac12` shorthand, spelled-out infinity, a trailing period.
 *
 * @module
 */

/** A normalised answer and what the normalisation removed that can change its value. */
export interface NormalizedAnswer {
  /** The text after all rewrite rules. */
  text: string;
  /** True when a percent sign was removed (then `x` may also mean `x/100`). */
  percent: boolean;
}

/** Unit and filler words dropped when they stand alone in `\text{…}` or after a number. */
export const UNIT_WORDS: readonly string[] = [
  "units?",
  "square",
  "sq",
  "cubic",
  "cm",
  "centimeters?",
  "meters?",
  "m",
  "km",
  "kilometers?",
  "mm",
  "millimeters?",
  "inches",
  "inch",
  "in",
  "feet",
  "foot",
  "ft",
  "yards?",
  "miles?",
  "mph",
  "degrees?",
  "deg",
  "radians?",
  "rad",
  "dollars?",
  "cents?",
  "seconds?",
  "sec",
  "s",
  "minutes?",
  "min",
  "hours?",
  "hrs?",
  "h",
  "days?",
  "weeks?",
  "months?",
  "years?",
  "ways",
  "people",
  "persons?",
  "students?",
  "points?",
  "cups?",
  "pounds?",
  "lbs?",
  "ounces?",
  "oz",
  "gallons?",
  "liters?",
  "kg",
  "g",
  "grams?",
  "mg",
  "nm",
  "km/h",
  "m/s",
  "K",
  "J",
  "eV",
  "N",
  "W",
  "Hz",
  "times",
  "steps?",
  "games?",
  "books?",
  "coins?",
  "marbles?",
  "balls?",
  "boxes?",
  "tiles?",
];

const UNIT = `(?:${UNIT_WORDS.join("|")})`;
/** One unit expression: words, optional powers, optional `/` denominators, e.g. `cm^2`, `m/s`. */
const UNIT_PHRASE = new RegExp(`^\\s*(?:${UNIT}(?:\\^\\{?\\d\\}?)?\\s*(?:/\\s*)?\\s*)+$`);
const TRAILING_UNITS = new RegExp(
  `(\\d|\\})\\s+(?:${UNIT}(?:\\^\\{?\\d\\}?)?(?:\\s+|/)?)+$`,
);

/** Wrappers whose content is kept (or dropped when it is only units). */
const TEXT_WRAPPER =
  /\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}(\^\{?\d\}?)?/g;

/** The rewrite rules, in order. Each is [what it does, pattern, replacement]. */
const RULES: ReadonlyArray<readonly [string, RegExp, string | ((...m: string[]) => string)]> = [
  ["dollar signs", /\\\$|\$/g, ""],
  ["thousands separators with a thin space", /(?<=\d),\\!(?=\d{3})/g, ""],
  [
    "sizing and style commands",
    /\\(?:displaystyle|textstyle|left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![a-zA-Z])/g,
    "",
  ],
  ["phantom", /\\phantom\s*(?:\{[^{}]*\})?/g, ""],
  ["spacing commands", /(?<!\\)\\[!,;:> ]|\\quad|\\qquad/g, " "],
  ["non-breaking space", /~/g, " "],
  ["fraction variants", /\\[dt]frac(?![a-zA-Z])/g, "\\frac"],
  ["binomial variants", /\\[dt]binom(?![a-zA-Z])/g, "\\binom"],
  ["degree marks", /\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|°|\\circ(?![a-zA-Z])|\\degree/g, ""],
  ["text wrappers", TEXT_WRAPPER, (_m, inner) => UNIT_PHRASE.test(inner) ? " " : ` ${inner} `],
  ["trailing unit words", TRAILING_UNITS, (_m, last) => last],
  ["thousands separator braces", /(?<=\d)\{,\}(?=\d{3})/g, ""],
  ["infinity words", /(?<![a-zA-Z\\])(?:infinity|inf)(?![a-zA-Z])/g, "\\infty"],
  ["sqrt shorthand", /\\sqrt\s*([0-9a-zA-Z])/g, "\\sqrt{$1}"],
  ["frac shorthand (two tokens)", /\\frac\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])/g, "\\frac{$1}{$2}"],
  ["frac shorthand (numerator)", /\\frac\s*([0-9a-zA-Z])\s*\{/g, "\\frac{$1}{"],
  ["frac shorthand (denominator)", /\\frac\s*\{([^{}]*)\}\s*([0-9a-zA-Z])/g, "\\frac{$1}{$2}"],
  ["membership prefix", /^\s*[a-zA-Z]\s*\\in\s*/, ""],
  ["trailing period or comma", /[.,]\s*$/, ""],
  ["repeated spaces", /\s+/g, " "],
];

const PERCENT = /\\%|%|\s*\bpercent\b/g;
const HAS_PERCENT = /\\%|%|\bpercent\b/;
const THOUSANDS = /^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;

/**
 * Normalise one final answer.
 *
 * @param answer Raw answer text (already extracted from a response).
 * @returns The normalised text and whether a percent sign was removed.
 * @example
 * ```ts
 * normalizeAnswer("$\\dfrac{1}{2}\\,\\text{ cm}$"); // { text: "\\frac{1}{2}", percent: false }
 * ```
 */
export function normalizeAnswer(answer: string): NormalizedAnswer {
  let text = answer.trim();
  const percent = HAS_PERCENT.test(text);
  text = text.replace(PERCENT, "");
  for (const [, pattern, replacement] of RULES) {
    // Wrappers can nest (`\text{\mathrm{cm}}`), so that rule runs until nothing changes.
    let before: string;
    do {
      before = text;
      text = typeof replacement === "string"
        ? text.replace(pattern, replacement)
        : text.replace(pattern, replacement);
    } while (pattern === TEXT_WRAPPER && text !== before);
  }
  text = text.trim();
  if (THOUSANDS.test(text)) text = text.replace(/,/g, "");
  return { text, percent };
}

/**
 * The key used for plain string comparison: the normalised text without any whitespace.
 *
 * @param answer Raw answer text.
 * @returns Normalised text with all whitespace removed.
 */
export function answerKey(answer: string): string {
  return normalizeAnswer(answer).text.replace(/\s+/g, "");
}
