/**
 * Math-equivalence of a predicted and a gold final answer.
 *
 * Order of checks, cheapest first:
 * 1. normalised strings equal (see `normalize.ts`);
 * 2. both read as the same structure (tuple/interval, set or list, union of intervals, matrix,
 *    equation) and their parts are pairwise equivalent (lists and sets in any order, tuples and
 *    intervals in order with the same brackets);
 * 3. scalars that parse (`expr.ts`) are compared by value: exactly when both are rational
 *    (integers, terminating decimals, fractions: `0.666667` is not `2/3`), within a relative
 *    tolerance when either involves an irrational (`\sqrt{2}`, `\pi`); expressions with variables are compared at seeded random
 *    points (polynomial-identity style), so `2x+3` equals `3+2x`;
 * 4. anything that does not parse is equal only by step 1.
 *
 * Deliberately lenient where graders usually are: a short `x =` prefix is ignored, a percent sign
 * lets `x%` match `x` or `x/100`, units and `\text{}` noise are dropped.
 *
 * @module
 */

import { makePrng } from "../_prng.ts";
import { evaluate, type Expr, freeVariables, parseExpr } from "./expr.ts";
import { answerKey, normalizeAnswer } from "./normalize.ts";
import { OPS, real, type Tolerance, type Value, valuesEqual } from "./value.ts";

/** An answer read as a structure whose leaves are scalar texts. */
export type Shape =
  | { kind: "scalar"; text: string }
  | { kind: "seq"; open: string; close: string; items: Shape[] }
  | { kind: "set"; items: Shape[] }
  | { kind: "union"; items: Shape[] }
  | { kind: "equation"; lhs: Shape; rhs: Shape };

/** Options for {@link mathEqual}. */
export interface GradeOptions extends Tolerance {
  /** Random points used to compare expressions with variables (default 4). */
  points?: number;
}

/** Split at top-level occurrences of `sep` (outside brackets and braces). */
function splitTop(text: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c)) depth--;
    else if (depth === 0 && text.startsWith(sep, k)) {
      parts.push(text.slice(start, k));
      start = k + sep.length;
      k += sep.length - 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim());
}

/** True when the bracket at 0 closes exactly at the last character (any of `)` `]`). */
function wrapsWhole(text: string): boolean {
  if (!"([".includes(text[0]) || !")]".includes(text[text.length - 1])) return false;
  let depth = 0;
  for (let k = 0; k < text.length; k++) {
    if ("([{".includes(text[k])) depth++;
    else if (")]}".includes(text[k]) && --depth === 0) return k === text.length - 1;
  }
  return false;
}

const SHORT_LHS = /^(?:[a-zA-Z](?:_\{?\w+\}?)?'*|\\[a-zA-Z]+)$/;
const MATRIX = /^\\begin\{([pbv]?matrix)\}(.*)\\end\{\1\}$/s;

/**
 * Read a normalised answer as a structure.
 *
 * @param text Normalised answer text.
 * @returns Its shape; plain values are `scalar`.
 */
export function readShape(text: string): Shape {
  text = text.trim();
  const union = splitTop(text, "\\cup");
  if (union.length > 1) return { kind: "union", items: union.map(readShape) };
  const matrix = MATRIX.exec(text);
  if (matrix) {
    const rows = matrix[2].split("\\\\").map((r) => r.trim()).filter((r) => r !== "");
    return {
      kind: "seq",
      open: "matrix",
      close: "matrix",
      items: rows.map((r) => ({
        kind: "seq",
        open: "row",
        close: "row",
        items: r.split("&").map(readShape),
      })),
    };
  }
  if (text.startsWith("\\{") && text.endsWith("\\}")) {
    return {
      kind: "set",
      items: splitTop(text.slice(2, -2), ",").filter((p) => p !== "").map(readShape),
    };
  }
  if (wrapsWhole(text)) {
    const items = splitTop(text.slice(1, -1), ",");
    if (items.length > 1) {
      return {
        kind: "seq",
        open: text[0],
        close: text[text.length - 1],
        items: items.map(readShape),
      };
    }
  }
  const list = splitTop(text.replace(/\s+and\s+/g, ","), ",").filter((p) => p !== "");
  if (list.length > 1) return { kind: "set", items: list.map(readShape) };
  const sides = splitTop(text, "=");
  if (sides.length === 2) {
    if (SHORT_LHS.test(sides[0])) return readShape(sides[1]);
    return { kind: "equation", lhs: readShape(sides[0]), rhs: readShape(sides[1]) };
  }
  const pm = text.indexOf("\\pm");
  if (pm >= 0) {
    const [head, tail] = [text.slice(0, pm), text.slice(pm + 3)];
    return { kind: "set", items: [readShape(`${head}+${tail}`), readShape(`${head}-${tail}`)] };
  }
  return { kind: "scalar", text };
}

/** Deterministic evaluation points for variables (the same for every call). */
function samplePoints(names: string[], count: number): Array<Map<string, Value>> {
  const rng = makePrng("grader-points");
  return Array.from(
    { length: count },
    () => new Map(names.map((n) => [n, real(0.5 + 2 * rng.next())])),
  );
}

function safeEvaluate(e: Expr, env: Map<string, Value>): Value | null {
  const v = evaluate(e, env);
  return !v.exact && Number.isNaN(v.v) ? null : v;
}

/** Value equality of two parsed expressions, trying percent readings when asked. */
function exprEqual(a: Expr, b: Expr, percent: boolean, options: GradeOptions): boolean {
  const names = [...new Set([...freeVariables(a), ...freeVariables(b)])].sort();
  const one: Value = { exact: true, n: 1n, d: 1n };
  const hundredth: Value = { exact: true, n: 1n, d: 100n };
  const scales: Array<[Value, Value]> = [[one, one]];
  if (percent) scales.push([hundredth, one], [one, hundredth]);
  const envs = names.length === 0
    ? [new Map<string, Value>()]
    : samplePoints(names, options.points ?? 4);
  return scales.some(([sa, sb]) => {
    let compared = 0;
    for (const env of envs) {
      const x = safeEvaluate(a, env);
      const y = safeEvaluate(b, env);
      if (x === null || y === null) continue;
      if (!valuesEqual(OPS.mul(x, sa), OPS.mul(y, sb), options)) return false;
      compared++;
    }
    return compared >= Math.min(2, envs.length);
  });
}

function scalarEqual(a: string, b: string, percent: boolean, options: GradeOptions): boolean {
  if (a.replace(/\s+/g, "") === b.replace(/\s+/g, "")) return true;
  const x = parseExpr(a);
  const y = parseExpr(b);
  return x !== null && y !== null && exprEqual(x, y, percent, options);
}

/** Match every item of `a` with a distinct equal item of `b` (any order). */
function sameMultiset(a: Shape[], b: Shape[], eq: (x: Shape, y: Shape) => boolean): boolean {
  if (a.length !== b.length) return false;
  const used = new Array(b.length).fill(false);
  return a.every((x) => {
    const k = b.findIndex((y, j) => !used[j] && eq(x, y));
    if (k < 0) return false;
    used[k] = true;
    return true;
  });
}

function shapesEqual(a: Shape, b: Shape, percent: boolean, options: GradeOptions): boolean {
  const eq = (x: Shape, y: Shape) => shapesEqual(x, y, percent, options);
  const pairwise = (x: Shape[], y: Shape[]) =>
    x.length === y.length && x.every((s, k) => eq(s, y[k]));
  if (a.kind === "set" && a.items.length === 1) return eq(a.items[0], b);
  if (b.kind === "set" && b.items.length === 1) return eq(a, b.items[0]);
  if (a.kind === "scalar" && b.kind === "scalar") {
    return scalarEqual(a.text, b.text, percent, options);
  }
  if (a.kind === "seq" && b.kind === "seq") {
    return a.open === b.open && a.close === b.close && pairwise(a.items, b.items);
  }
  if (a.kind === "set" && b.kind === "set") return sameMultiset(a.items, b.items, eq);
  if (a.kind === "union" && b.kind === "union") return pairwise(a.items, b.items);
  if (a.kind === "equation" && b.kind === "equation") {
    return (eq(a.lhs, b.lhs) && eq(a.rhs, b.rhs)) || (eq(a.lhs, b.rhs) && eq(a.rhs, b.lhs));
  }
  // A bare list written in order matches a parenthesised tuple: "2, 4" vs "(2,4)".
  const tupleVsList = (t: Shape, l: Shape) =>
    t.kind === "seq" && t.open === "(" && t.close === ")" && l.kind === "set" &&
    pairwise(t.items, l.items);
  return tupleVsList(a, b) || tupleVsList(b, a);
}

/**
 * Are a predicted and a gold final answer mathematically the same?
 *
 * @param prediction Extracted answer of a response.
 * @param gold Gold answer of the dataset.
 * @param options Tolerances and number of random points.
 * @returns True when equivalent. Never throws on answer text.
 * @example
 * ```ts
 * mathEqual("0.5", "\\frac{1}{2}"); // true
 * mathEqual("1,000", "1000"); // true
 * mathEqual("(1,2]", "(1,2)"); // false
 * ```
 */
export function mathEqual(prediction: string, gold: string, options: GradeOptions = {}): boolean {
  if (prediction.trim() === gold.trim()) return true;
  const p = normalizeAnswer(prediction);
  const g = normalizeAnswer(gold);
  if (p.text === "" || g.text === "") return false;
  if (answerKey(prediction) === answerKey(gold)) return true;
  try {
    return shapesEqual(readShape(p.text), readShape(g.text), p.percent || g.percent, options);
  } catch (e) {
    // Model output can nest deeper than the stack or ask for a bigint beyond the engine's limit
    // (both RangeErrors); such an answer equals the gold one only by the string checks above.
    if (e instanceof RangeError) return false;
    throw e;
  }
}

/** How well the grader understands an answer. */
export type Coverage = "number" | "expression" | "string-only";

/**
 * Say whether every leaf of an answer parses as a number, as an expression with variables, or
 * whether some leaf is compared only as a normalised string.
 *
 * @param answer An answer (typically a gold answer).
 * @returns The weakest coverage among its leaves.
 */
export function answerCoverage(answer: string): Coverage {
  const leaves: string[] = [];
  const walk = (s: Shape): void => {
    if (s.kind === "scalar") leaves.push(s.text);
    else if (s.kind === "equation") [s.lhs, s.rhs].forEach(walk);
    else s.items.forEach(walk);
  };
  walk(readShape(normalizeAnswer(answer).text));
  let coverage: Coverage = "number";
  for (const leaf of leaves) {
    const e = parseExpr(leaf);
    if (e === null) return "string-only";
    if (freeVariables(e).length > 0) coverage = "expression";
  }
  return coverage;
}
