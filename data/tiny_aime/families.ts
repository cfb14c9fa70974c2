/**
 * Problem families of the tiny-AIME task. Each family is a generator that, given a seeded stream,
 * a number of steps and the difficulty knobs, builds one problem, its step-by-step trace and its
 * integer answer, or returns `null` when the draw breaks a bound (the caller draws again).
 *
 * Every trace line is one operation written `a<op>b=c` whose left operand is the previous line's
 * result (the first line starts from a number of the problem), so a step count is exactly the
 * number of trace lines before the final `#### N` line, and a trace can be recomputed from any
 * line on (`noise.ts` relies on this).
 *
 * @module
 */

import type { Prng } from "../_prng.ts";

/**
 * The difficulty knobs of the task (config keys `data.tinyAime.*`).
 *
 * The defaults are sized for a ~1.5M-parameter character-level policy: with operands ≤ 10,
 * multipliers ≤ 5 and 1–2 steps, a 1,500-step warm-up on noisy traces reaches about 38 % Avg@8
 * (Pass@8 86 %), and GRPO has room to add to it. Operands ≤ 20 leave the warm-up near 15 %;
 * operands ≤ 10 on clean traces give a policy that is nearly always all right or all wrong on a
 * problem (Avg@8 64 %, Pass@8 77 %).
 */
export interface TinyAimeKnobs {
  /** Largest addend, subtrahend, starting value of a chain, unknown `x` and modulus. */
  readonly operandMax: number;
  /** Largest multiplier and divisor, and largest base of a power. */
  readonly multiplierMax: number;
  /** Step counts a problem may have (trace lines before `#### N`). */
  readonly steps: readonly number[];
  /** Relative weight of each entry of `steps` (same length). */
  readonly stepWeights: readonly number[];
  /** Families drawn from (names of {@link FAMILIES}). */
  readonly families: readonly string[];
}

/** The default knobs (the tiny preset states the same values). */
export const DEFAULT_KNOBS: TinyAimeKnobs = {
  operandMax: 10,
  multiplierMax: 5,
  steps: [1, 2],
  stepWeights: [1, 2],
  families: ["chain", "linear", "power"],
};

/** A generated problem before it is turned into a dataset row. */
export interface Draft {
  /** Problem text, e.g. `(7+8)*3=?`. */
  problem: string;
  /** One line per step, e.g. `7+8=15`. */
  steps: string[];
  /** Final integer answer. */
  answer: number;
}

/** One problem family. */
export interface Family {
  /** What the problems look like. */
  description: string;
  /** Fewest steps this family can produce (it can produce any count from here up). */
  minSteps: number;
  /** Relative weight among the families a split draws from. */
  weight: number;
  /** Build one problem, or `null` when the draw breaks a bound. */
  generate(rng: Prng, steps: number, knobs: TinyAimeKnobs): Draft | null;
}

/** Every intermediate value stays in [0, VALUE_MAX]; answers stay in [0, ANSWER_MAX]. */
export const VALUE_MAX = 9999;
/** Largest answer, as in AIME. */
export const ANSWER_MAX = 999;
/** Smallest modulus (a remainder by 1 is always 0). */
export const MOD_MIN = 2;

/** The operators of trace lines. */
export type Op = "+" | "-" | "*" | "/" | "%";

/** Binding strength of each operator, to know when a chain needs parentheses. */
const PRECEDENCE: Record<Op, number> = { "+": 1, "-": 1, "*": 2, "/": 2, "%": 2 };

/**
 * Apply one operator. `null` when the result is not a non-negative integer (a division that is
 * not exact, a negative difference, a remainder by 0).
 */
export const APPLY: Readonly<Record<Op, (a: number, b: number) => number | null>> = {
  "+": (a, b) => a + b,
  "-": (a, b) => (a >= b ? a - b : null),
  "*": (a, b) => a * b,
  "/": (a, b) => (b > 0 && a % b === 0 ? a / b : null),
  "%": (a, b) => (b > 0 ? a % b : null),
};

/** Draw a right operand for `cur <op> b` that keeps the result an integer in range, or null. */
const OPERAND: Record<Op, (rng: Prng, cur: number, k: TinyAimeKnobs) => number | null> = {
  "+": (rng, _cur, k) => rng.int(1, k.operandMax),
  "-": (rng, cur, k) => cur < 1 ? null : rng.int(1, Math.min(cur, k.operandMax)),
  "*": (rng, _cur, k) => k.multiplierMax < 2 ? null : rng.int(2, k.multiplierMax),
  "/": (rng, cur, k) => {
    const divisors: number[] = [];
    for (let d = 2; d <= k.multiplierMax; d++) if (cur % d === 0) divisors.push(d);
    return divisors.length === 0 || cur === 0 ? null : rng.pick(divisors);
  },
  "%": (rng, cur, k) => {
    const top = Math.min(k.operandMax, cur - 1);
    return top < MOD_MIN ? null : rng.int(MOD_MIN, top);
  },
};

const CHAIN_OPS: ReadonlyArray<readonly [Op, number]> = [
  ["+", 3],
  ["-", 3],
  ["*", 3],
  ["/", 1],
  ["%", 1],
];

/** One trace line. */
function line(a: number, op: Op, b: number, c: number): string {
  return `${a}${op}${b}=${c}`;
}

/** `a op b op c …` evaluated left to right, parenthesised where precedence would differ. */
function chain(rng: Prng, steps: number, k: TinyAimeKnobs): Draft | null {
  let cur = rng.int(2, Math.max(2, k.operandMax));
  let text = String(cur);
  let textPrecedence = 3; // a bare number binds tightest
  const lines: string[] = [];
  for (let s = 0; s < steps; s++) {
    const op = rng.weighted(CHAIN_OPS);
    const b = OPERAND[op](rng, cur, k);
    if (b === null) return null;
    const next = APPLY[op](cur, b);
    if (next === null || next > VALUE_MAX) return null;
    const left = textPrecedence < PRECEDENCE[op] ? `(${text})` : text;
    text = `${left}${op}${b}`;
    textPrecedence = PRECEDENCE[op];
    lines.push(line(cur, op, b, next));
    cur = next;
  }
  return { problem: `${text}=?`, steps: lines, answer: cur };
}

type EquationOp = "+" | "-" | "*";

/** Inverse operation used by the trace to undo each forward step. */
const UNDO: Record<EquationOp, Op> = { "+": "-", "-": "+", "*": "/" };

/**
 * How the outermost operation of an equation is written: `x+4`, `4+x`, `3*x` or `x*3`. Both
 * orders of `+` and `*` are drawn, which doubles the small space of one-step equations.
 */
function wrap(op: EquationOp, text: string, textPrecedence: number, b: number, swap: boolean) {
  const inner = (need: number) => (textPrecedence < need ? `(${text})` : text);
  if (op === "-") return { text: `${text}-${b}`, precedence: 1 };
  if (op === "+") return { text: swap ? `${b}+${text}` : `${text}+${b}`, precedence: 1 };
  return { text: swap ? `${inner(2)}*${b}` : `${b}*${inner(2)}`, precedence: 2 };
}

/** Solve `f(x) = c` where f applies `steps` operations to x; the trace undoes them in reverse. */
function linear(rng: Prng, steps: number, k: TinyAimeKnobs): Draft | null {
  const x = rng.int(0, k.operandMax);
  let cur = x;
  let text = "x";
  let textPrecedence = 3;
  const applied: Array<[EquationOp, number]> = [];
  for (let s = 0; s < steps; s++) {
    const op = rng.pick(["+", "-", "*"] as const);
    const b = OPERAND[op](rng, cur, k);
    if (b === null) return null;
    const next = APPLY[op](cur, b);
    if (next === null || next > VALUE_MAX) return null;
    cur = next;
    const wrapped = wrap(op, text, textPrecedence, b, rng.next() < 0.5);
    text = wrapped.text;
    textPrecedence = wrapped.precedence;
    applied.push([op, b]);
  }
  const lines: string[] = [];
  let value = cur;
  for (const [op, b] of applied.reverse()) {
    const next = APPLY[UNDO[op]](value, b)!;
    lines.push(line(value, UNDO[op], b, next));
    value = next;
  }
  return { problem: `${text}=${cur};x=?`, steps: lines, answer: x };
}

/** `a^k%m`: k−1 multiplications, then one reduction (k = steps). */
function power(rng: Prng, steps: number, k: TinyAimeKnobs): Draft | null {
  if (k.multiplierMax < 2) return null;
  const a = rng.int(2, k.multiplierMax);
  let cur = a;
  const lines: string[] = [];
  for (let e = 1; e < steps; e++) {
    const next = cur * a;
    if (next > VALUE_MAX) return null;
    lines.push(line(cur, "*", a, next));
    cur = next;
  }
  const top = Math.min(k.operandMax, cur - 1);
  if (top < MOD_MIN) return null;
  const m = rng.int(MOD_MIN, top);
  lines.push(line(cur, "%", m, cur % m));
  return { problem: `${a}^${steps}%${m}=?`, steps: lines, answer: cur % m };
}

/** The families, keyed by name. */
export const FAMILIES: Readonly<Record<string, Family>> = {
  chain: {
    description: "chained arithmetic with + - * / % (e.g. `(7+8)*3=?`)",
    minSteps: 1,
    weight: 5,
    generate: chain,
  },
  linear: {
    description: "solve a linear equation in x (e.g. `3*(x-4)+5=23;x=?`)",
    minSteps: 1,
    weight: 4,
    generate: linear,
  },
  power: {
    description: "modular power by repeated multiplication (e.g. `4^2%7=?`)",
    minSteps: 2,
    weight: 1,
    generate: power,
  },
};

/**
 * Check knobs and say what is wrong, for config errors.
 *
 * @param knobs Candidate knobs.
 * @returns One line per problem (naming the `data.tinyAime.*` key); empty when valid.
 */
export function knobProblems(knobs: TinyAimeKnobs): string[] {
  const problems: string[] = [];
  const key = (name: string) => `data.tinyAime.${name}`;
  if (!Number.isInteger(knobs.operandMax) || knobs.operandMax < 2) {
    problems.push(`${key("operandMax")} is ${knobs.operandMax}; expected an integer ≥ 2`);
  }
  if (!Number.isInteger(knobs.multiplierMax) || knobs.multiplierMax < 2) {
    problems.push(`${key("multiplierMax")} is ${knobs.multiplierMax}; expected an integer ≥ 2`);
  }
  if (knobs.steps.length === 0 || knobs.steps.some((s) => !Number.isInteger(s) || s < 1)) {
    problems.push(
      `${key("steps")} is ${JSON.stringify(knobs.steps)}; expected integers ≥ 1 (at least one)`,
    );
  }
  if (
    knobs.stepWeights.length !== knobs.steps.length ||
    knobs.stepWeights.some((w) => !(w >= 0)) || !knobs.stepWeights.some((w) => w > 0)
  ) {
    problems.push(
      `${key("stepWeights")} is ${JSON.stringify(knobs.stepWeights)}; expected one weight ≥ 0 ` +
        `per entry of ${key("steps")} (${knobs.steps.length}), not all 0`,
    );
  }
  const unknown = knobs.families.filter((f) => !(f in FAMILIES));
  if (knobs.families.length === 0 || unknown.length > 0) {
    problems.push(
      `${key("families")} is ${JSON.stringify(knobs.families)}; expected a non-empty list from ` +
        Object.keys(FAMILIES).join(", "),
    );
  }
  for (const s of knobs.steps) {
    if (!knobs.families.some((f) => FAMILIES[f] !== undefined && FAMILIES[f].minSteps <= s)) {
      problems.push(`no family of ${key("families")} can make problems of ${s} step(s)`);
    }
  }
  return problems;
}
