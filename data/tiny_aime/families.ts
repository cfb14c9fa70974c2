/**
 * Problem families of the tiny-AIME task. Each family is a generator that, given a seeded stream,
 * a number of steps and an operand tier, builds one problem, its step-by-step trace and its
 * integer answer, or returns `null` when the draw breaks a bound (the caller draws again).
 *
 * Every trace line is one operation written `a<op>b=c`, evaluated left to right, so a step count
 * is exactly the number of trace lines before the final `#### N` line.
 *
 * @module
 */

import type { Prng } from "../_prng.ts";

/** Operand tier: how large the numbers in a problem may be. */
export type OperandTier = "small" | "large";

/** A generated problem before it is turned into a dataset row. */
export interface Draft {
  /** Problem text, e.g. `(37+58)*6-143=?`. */
  problem: string;
  /** One line per step, e.g. `37+58=95`. */
  steps: string[];
  /** Final integer answer. */
  answer: number;
}

/** One problem family. */
export interface Family {
  /** What the problems look like. */
  description: string;
  /** Step counts this family can produce. */
  steps: readonly number[];
  /** Build one problem, or `null` when the draw breaks a bound. */
  generate(rng: Prng, steps: number, tier: OperandTier): Draft | null;
}

/** Operand ranges per tier. */
export const OPERAND_RANGES: Record<OperandTier, {
  /** Largest addend / subtrahend, and largest starting value of a chain. */
  addMax: number;
  /** Largest multiplier / divisor. */
  mulMax: number;
  /** Smallest and largest modulus. */
  modMin: number;
  modMax: number;
  /** Largest unknown `x` in equations and largest base in powers. */
  xMax: number;
  baseMax: number;
}> = {
  small: { addMax: 50, mulMax: 9, modMin: 3, modMax: 20, xMax: 50, baseMax: 9 },
  large: { addMax: 999, mulMax: 30, modMin: 7, modMax: 200, xMax: 999, baseMax: 30 },
};

/** Every intermediate value stays in [0, VALUE_MAX]; answers stay in [0, ANSWER_MAX]. */
export const VALUE_MAX = 9999;
/** Largest answer, as in AIME. */
export const ANSWER_MAX = 999;

type Op = "+" | "-" | "*" | "/" | "%";

/** Binding strength of each operator, to know when a chain needs parentheses. */
const PRECEDENCE: Record<Op, number> = { "+": 1, "-": 1, "*": 2, "/": 2, "%": 2 };

/** Apply one operator (all results are exact integers by construction). */
const APPLY: Record<Op, (a: number, b: number) => number> = {
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  "/": (a, b) => a / b,
  "%": (a, b) => a % b,
};

/** Draw a right operand for `cur <op> b` that keeps the result an integer in range, or null. */
const OPERAND: Record<Op, (rng: Prng, cur: number, tier: OperandTier) => number | null> = {
  "+": (rng, _cur, tier) => rng.int(1, OPERAND_RANGES[tier].addMax),
  "-": (rng, cur, tier) => cur < 1 ? null : rng.int(1, Math.min(cur, OPERAND_RANGES[tier].addMax)),
  "*": (rng, _cur, tier) => rng.int(2, OPERAND_RANGES[tier].mulMax),
  "/": (rng, cur, tier) => {
    const divisors: number[] = [];
    for (let d = 2; d <= OPERAND_RANGES[tier].mulMax; d++) if (cur % d === 0) divisors.push(d);
    return divisors.length === 0 || cur === 0 ? null : rng.pick(divisors);
  },
  "%": (rng, cur, tier) => {
    const { modMin, modMax } = OPERAND_RANGES[tier];
    return cur <= modMin ? null : rng.int(modMin, Math.min(modMax, cur - 1));
  },
};

const CHAIN_OPS: ReadonlyArray<readonly [Op, number]> = [
  ["+", 3],
  ["-", 3],
  ["*", 3],
  ["/", 1],
  ["%", 1],
];

/** `a op b op c …` evaluated left to right, parenthesised where precedence would differ. */
function chain(rng: Prng, steps: number, tier: OperandTier): Draft | null {
  let cur = rng.int(2, OPERAND_RANGES[tier].addMax);
  let text = String(cur);
  let textPrecedence = 3; // a bare number binds tightest
  const lines: string[] = [];
  for (let s = 0; s < steps; s++) {
    const op = rng.weighted(CHAIN_OPS);
    const b = OPERAND[op](rng, cur, tier);
    if (b === null) return null;
    const next = APPLY[op](cur, b);
    if (!Number.isInteger(next) || next < 0 || next > VALUE_MAX) return null;
    const left = textPrecedence < PRECEDENCE[op] ? `(${text})` : text;
    text = `${left}${op}${b}`;
    textPrecedence = PRECEDENCE[op];
    lines.push(`${cur}${op}${b}=${next}`);
    cur = next;
  }
  return { problem: `${text}=?`, steps: lines, answer: cur };
}

type EquationOp = "+" | "-" | "*";

/** Inverse operation used by the trace to undo each forward step. */
const UNDO: Record<EquationOp, Op> = { "+": "-", "-": "+", "*": "/" };

/** Solve `f(x) = c` where f applies `steps` operations to x; the trace undoes them in reverse. */
function linear(rng: Prng, steps: number, tier: OperandTier): Draft | null {
  const x = rng.int(0, OPERAND_RANGES[tier].xMax);
  let cur = x;
  let text = "x";
  let textPrecedence = 3;
  const applied: Array<[EquationOp, number]> = [];
  for (let s = 0; s < steps; s++) {
    const op = rng.pick(["+", "-", "*"] as const);
    const b = OPERAND[op](rng, cur, tier);
    if (b === null) return null;
    cur = APPLY[op](cur, b);
    if (cur < 0 || cur > VALUE_MAX) return null;
    if (op === "*") {
      text = `${b}*${textPrecedence < 2 ? `(${text})` : text}`;
      textPrecedence = 2;
    } else {
      text = `${text}${op}${b}`;
      textPrecedence = 1;
    }
    applied.push([op, b]);
  }
  const lines: string[] = [];
  let value = cur;
  for (const [op, b] of applied.reverse()) {
    const next = APPLY[UNDO[op]](value, b);
    lines.push(`${value}${UNDO[op]}${b}=${next}`);
    value = next;
  }
  return { problem: `${text}=${cur};x=?`, steps: lines, answer: x };
}

/** `a^k%m`: k−1 multiplications, then one reduction (k = steps). */
function power(rng: Prng, steps: number, tier: OperandTier): Draft | null {
  const { baseMax, modMin, modMax } = OPERAND_RANGES[tier];
  const a = rng.int(2, baseMax);
  let cur = a;
  const lines: string[] = [];
  for (let k = 1; k < steps; k++) {
    const next = cur * a;
    if (next > VALUE_MAX) return null;
    lines.push(`${cur}*${a}=${next}`);
    cur = next;
  }
  if (cur <= modMin) return null;
  const m = rng.int(modMin, Math.min(modMax, cur - 1));
  lines.push(`${cur}%${m}=${cur % m}`);
  return { problem: `${a}^${steps}%${m}=?`, steps: lines, answer: cur % m };
}

/** The families, keyed by name. */
export const FAMILIES: Readonly<Record<string, Family>> = {
  chain: {
    description: "chained arithmetic with + - * / % (e.g. `(37+58)*6-143=?`)",
    steps: [1, 2, 3, 4, 5],
    generate: chain,
  },
  linear: {
    description: "solve a linear equation in x (e.g. `3*(x-4)+5=35;x=?`)",
    steps: [1, 2, 3, 4, 5],
    generate: linear,
  },
  power: {
    description: "modular power by repeated multiplication (e.g. `7^4%100=?`)",
    steps: [2, 3, 4, 5],
    generate: power,
  },
};
