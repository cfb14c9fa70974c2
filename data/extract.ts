/**
 * Final-answer extraction from model responses: a registry of small extractors, tried in a
 * per-dataset order. A response none of them understands is its own outcome (`unparsable`),
 * counted by {@link summarizeExtractions}.
 *
 * @example
 * ```ts
 * import { extractAnswer } from "./extract.ts";
 * extractAnswer("so x = \\boxed{\\frac{1}{2}}.", { order: ["boxed"] });
 * // { kind: "answer", value: "\\frac{1}{2}", extractor: "boxed" }
 * ```
 *
 * `opencompass_v2` is the SENT paper's evaluation harness (OpenCompass `math_postprocess_v2`)
 * reading a response, rule for rule, quirks included, so that evaluation under the
 * `opencompass-v2` grader mode sees the answers the harness sees; the other extractors are ours.
 *
 * @module
 */

import { normalizeV2 } from "./grade/opencompass_v2.ts";

/** What extraction found in one response. */
export type Extraction =
  | { kind: "answer"; value: string; extractor: ExtractorName }
  | { kind: "unparsable" };

/** An extractor returns the raw answer text it found, or null. */
export type Extractor = (response: string) => string | null;

/**
 * Content of the last `\boxed{…}` (or `\fbox{…}`) with balanced nested braces; also accepts the
 * brace-less `\boxed 5` form. One outer `{…}` pair around the whole content is removed.
 */
function boxed(response: string): string | null {
  const at = Math.max(response.lastIndexOf("\\boxed"), response.lastIndexOf("\\fbox"));
  if (at < 0) return null;
  let k = at + (response.startsWith("\\boxed", at) ? 6 : 5);
  if (response[k] === " " && response[k + 1] !== "{") {
    const m = /^ ([^\s$]+)/.exec(response.slice(k));
    return m ? m[1] : null;
  }
  while (response[k] === " ") k++;
  if (response[k] !== "{") return null;
  let depth = 0;
  for (let end = k; end < response.length; end++) {
    if (response[end] === "{") depth++;
    else if (response[end] === "}" && --depth === 0) {
      return stripOuterBraces(response.slice(k + 1, end).trim());
    }
  }
  return null; // unbalanced: the response was cut off inside the box
}

/** The last line of the form `Answer: X` (case-insensitive), as DAPO-Math-17k asks for. */
function answerLine(response: string): string | null {
  const lines = response.split("\n");
  for (let k = lines.length - 1; k >= 0; k--) {
    const m = /^\s*\**\s*answer\s*\**\s*:\s*\**\s*(.+?)\s*$/i.exec(lines[k]);
    if (m) return cleanInline(m[1]);
  }
  return null;
}

/** Text after the last `####` marker, up to the end of its line (GSM8K and the built-in task). */
function hashMarker(response: string): string | null {
  const at = response.lastIndexOf("####");
  if (at < 0) return null;
  const value = response.slice(at + 4).split("\n")[0].trim();
  return value === "" ? null : value;
}

/** What follows the last "answer is" / "final answer is", up to a sentence end or line end. */
function answerIs(response: string): string | null {
  const matches = [...response.matchAll(/answer\s+is\s*:?\s*/gi)];
  if (matches.length === 0) return null;
  const last = matches[matches.length - 1];
  const rest = response.slice(last.index! + last[0].length);
  const boxedInside = boxed(rest);
  if (boxedInside !== null) return boxedInside;
  const sentence = rest.split("\n")[0].split(/\.(?:\s|$)/)[0];
  const value = cleanInline(sentence);
  return value === "" ? null : value;
}

/**
 * The harness's last box: from the last `\boxed` (only when there is none, the last `\fbox`),
 * up to the closing brace that brings the count of braces opened since back to zero. Null when
 * there is no box or its braces never balance (a response cut off inside it).
 */
function harnessLastBox(response: string): string | null {
  let at = response.lastIndexOf("\\boxed");
  if (at < 0) at = response.lastIndexOf("\\fbox");
  if (at < 0) return null;
  let depth = 0;
  for (let k = at; k < response.length; k++) {
    if (response[k] === "{") depth++;
    else if (response[k] === "}" && --depth === 0) return response.slice(at, k + 1);
  }
  return null;
}

/**
 * The harness's boxed answer: the argument of its last box when that box is written exactly
 * `\boxed{…}` (so `\fbox{…}`, `\boxed {…}` and `\boxed 5` give none), then one `{…}` pair
 * around it removed: a text that starts with `{` and ends with `}` (a single newline after it
 * allowed, none inside) loses its first and last brace, even when they do not pair up
 * (`{1}+{2}` → `1}+{2`, as the harness's pattern does).
 */
function harnessBoxed(response: string): string | null {
  const box = harnessLastBox(response);
  const head = "\\boxed{";
  if (box === null || !box.startsWith(head)) return null;
  const inside = box.slice(head.length, -1);
  return /^\{([^\n]*)\}\n?$/.exec(inside)?.[1] ?? inside;
}

/** A piece of text that announces the answer, as the harness recognises it (any case). */
const ANNOUNCES_ANSWER = /final answer|answer is/;

/**
 * OpenCompass's `math_postprocess_v2`, the SENT paper's evaluation harness:
 * 1. the boxed answer ({@link harnessBoxed}), when it is not empty;
 * 2. otherwise the text is cut at every `.`; the first piece that says "final answer" or
 *    "answer is" (any case), or else the first piece, goes through the harness's Minerva-style
 *    normaliser (`normalizeV2`, the opencompass-v2 grader's rule table).
 *
 * The cut at `.` is literal: "The final answer is 2.5." gives `2`, as in the harness. It never
 * gives null: with no box and no marker, the first sentence is the answer.
 */
function opencompassV2(response: string): string {
  const boxedAnswer = harnessBoxed(response);
  if (boxedAnswer !== null && boxedAnswer !== "") return boxedAnswer;
  const pieces = response.split(".");
  const marked = pieces.find((piece) => ANNOUNCES_ANSWER.test(piece.toLowerCase()));
  return normalizeV2(marked ?? pieces[0]);
}

/** The last number in the response: integer, decimal, or `a/b`, with optional sign and commas. */
function lastNumber(response: string): string | null {
  const matches = [...response.matchAll(/-?\d[\d,]*(?:\.\d+)?(?:\/\d+)?/g)];
  if (matches.length === 0) return null;
  return matches[matches.length - 1][0].replace(/,$/, "");
}

/** Strip `$…$` delimiters, a trailing period and surrounding spaces. */
function cleanInline(text: string): string {
  let value = text.trim().replace(/\.$/, "").trim();
  if (value.startsWith("$") && value.endsWith("$") && value.length >= 2) {
    value = value.replace(/^\$+|\$+$/g, "").trim();
  }
  return value;
}

function stripOuterBraces(text: string): string {
  if (!text.startsWith("{") || !text.endsWith("}")) return text;
  let depth = 0;
  for (let k = 0; k < text.length; k++) {
    if (text[k] === "{") depth++;
    else if (text[k] === "}" && --depth === 0 && k < text.length - 1) return text;
  }
  return text.slice(1, -1).trim();
}

/** The extractors, keyed by name. */
export const EXTRACTORS = {
  /** Last `\boxed{…}` / `\fbox{…}`, nested braces balanced. */
  boxed,
  /** Last `Answer: X` line (the DAPO-Math-17k training format, which asks for that line). */
  answer_line: answerLine,
  /** Last `#### N` (GSM8K style; the built-in task's trace ends with it). */
  hash: hashMarker,
  /** Text after the last "answer is". */
  answer_is: answerIs,
  /** Last number anywhere in the response (a fallback; lenient). */
  last_number: lastNumber,
  /** The paper's evaluation harness (`math_postprocess_v2`): its last box, else a sentence. */
  opencompass_v2: opencompassV2,
} as const satisfies Record<string, Extractor>;

/** Name of a registered extractor. */
export type ExtractorName = keyof typeof EXTRACTORS;

/** Which extractors to try, in order, and on which part of the response. */
export interface ExtractorConfig {
  /** Extractors tried in order; the first that finds something wins. */
  order: readonly ExtractorName[];
  /** Look only at the last N characters (DAPO's judge reads the last 300). Default: all. */
  tailChars?: number;
}

/** Built-in task: the trace must end with `#### N`. */
export const TINY_AIME_EXTRACTION: ExtractorConfig = { order: ["hash"] };
/** Evaluation of real models: `\boxed{}` first, as the evaluation prompt asks, then "answer is". */
export const BOXED_EXTRACTION: ExtractorConfig = { order: ["boxed", "answer_is"] };
/**
 * Evaluation under the `opencompass-v2` grader mode: the answer as the SENT paper's evaluation
 * harness extracts it (its last `\boxed{…}`, else the sentence that announces the answer), so
 * both extraction and equivalence are the harness's.
 */
export const OPENCOMPASS_V2_EXTRACTION: ExtractorConfig = { order: ["opencompass_v2"] };
/**
 * Training reward on DAPO-style data: the prompts ask for an `Answer:` line, which the verl
 * reference implementation's reward reads; a `\boxed{}` (what evaluation asks for) counts too.
 */
export const REWARD_EXTRACTION: ExtractorConfig = { order: ["answer_line", "boxed"] };

/**
 * Extract the final answer of one response.
 *
 * @param response The decoded model output.
 * @param config Extractor order (and optional tail window).
 * @returns The answer with the extractor that found it, or `{ kind: "unparsable" }`.
 * @example
 * ```ts
 * extractAnswer("12*3=36\n#### 36", { order: ["hash"] }); // { kind: "answer", value: "36", extractor: "hash" }
 * ```
 */
export function extractAnswer(response: string, config: ExtractorConfig): Extraction {
  const text = config.tailChars === undefined ? response : response.slice(-config.tailChars);
  for (const name of config.order) {
    const extractor: Extractor | undefined = EXTRACTORS[name];
    if (extractor === undefined) {
      throw new Error(
        `unknown extractor "${name}"; expected one of ${Object.keys(EXTRACTORS).join(", ")}`,
      );
    }
    const value = extractor(text);
    if (value !== null && value.trim() !== "") {
      return { kind: "answer", value: value.trim(), extractor: name };
    }
  }
  return { kind: "unparsable" };
}

/** Counts over a batch of extractions. */
export interface ExtractionSummary {
  total: number;
  answered: number;
  unparsable: number;
  /** `unparsable / total` (0 for an empty batch). */
  unparsableRate: number;
  /** How many answers each extractor produced. */
  byExtractor: Partial<Record<ExtractorName, number>>;
}

/**
 * Count the outcomes of a batch, for logs and reports.
 *
 * @param results Extractions of a batch of responses.
 * @returns Totals, unparsable count and rate, answers per extractor.
 */
export function summarizeExtractions(results: readonly Extraction[]): ExtractionSummary {
  const byExtractor: Partial<Record<ExtractorName, number>> = {};
  let answered = 0;
  for (const r of results) {
    if (r.kind !== "answer") continue;
    answered++;
    byExtractor[r.extractor] = (byExtractor[r.extractor] ?? 0) + 1;
  }
  const unparsable = results.length - answered;
  return {
    total: results.length,
    answered,
    unparsable,
    unparsableRate: results.length === 0 ? 0 : unparsable / results.length,
    byExtractor,
  };
}
