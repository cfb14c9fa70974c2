/**
 * Noisy demonstrations for the warm-up: a trace in which one step's result is off by a few units
 * and every later step follows from the wrong value, down to the final `#### N` line.
 *
 * Why: a policy warmed up on clean traces of an easy task copies them almost perfectly, and RL
 * has nothing left to fix; on a harder task it learns too little to be rewarded at all. Warming
 * up on traces that are sometimes wrong in the way a weak solver is wrong (a slip in one step,
 * carried through consistently) leaves a policy that is right often enough to get reward and
 * wrong often enough for RL to improve it. Rewards always use the true answer.
 *
 * @example
 * ```ts
 * import { makePrng } from "../_prng.ts";
 * import { corruptTrace } from "./noise.ts";
 * const out = corruptTrace("7+8=15\n15*3=45\n#### 45", makePrng("demo"), {
 *   noise: 1,
 *   noiseMax: 9,
 * });
 * out.solution; // e.g. "7+8=12\n12*3=36\n#### 36"
 * ```
 *
 * @module
 */

import type { Prng } from "../_prng.ts";
import { APPLY, type Op, VALUE_MAX } from "./families.ts";

/** One trace line `a<op>b=c`. */
export interface TraceStep {
  readonly a: number;
  readonly op: Op;
  readonly b: number;
  readonly c: number;
}

/** How traces are corrupted. */
export interface NoiseOptions {
  /** Probability that one use of a trace is corrupted, in [0, 1]. */
  readonly noise: number;
  /** Largest shift of the corrupted result; shifts are ±1 … noiseMax. */
  readonly noiseMax: number;
}

/** What {@link corruptTrace} returns. */
export interface NoisyTrace {
  /** The trace to learn from (unchanged when not corrupted). */
  readonly solution: string;
  /** The 0-based step whose result was shifted, or `null` when the trace is clean. */
  readonly step: number | null;
}

/** Shifts tried before a trace is left clean (a shift can make a later division inexact). */
export const SHIFT_TRIES = 8;

const LINE = /^(\d+)([-+*/%])(\d+)=(\d+)$/;

/**
 * Read a tiny-AIME trace into its steps.
 *
 * @param solution Trace lines `a<op>b=c`, then `#### N`.
 * @returns The steps, in order.
 * @throws Error naming the first line that is not `a<op>b=c` or a missing `#### N` line.
 */
export function parseTrace(solution: string): TraceStep[] {
  const lines = solution.split("\n");
  const last = lines.pop();
  if (last === undefined || !/^#### \d+$/.test(last)) {
    throw new Error(
      `trace ${
        JSON.stringify(solution)
      } does not end in a "#### N" line; expected a tiny-AIME trace`,
    );
  }
  return lines.map((text, k) => {
    const m = LINE.exec(text);
    if (m === null) {
      throw new Error(
        `line ${k + 1} of trace ${JSON.stringify(solution)} is ${JSON.stringify(text)}; ` +
          "expected a<op>b=c",
      );
    }
    return { a: Number(m[1]), op: m[2] as Op, b: Number(m[3]), c: Number(m[4]) };
  });
}

/**
 * Write steps back as a trace, ending with `#### <last result>`.
 *
 * @param steps The steps (at least one).
 * @returns The trace text.
 */
export function formatTrace(steps: readonly TraceStep[]): string {
  const lines = steps.map((s) => `${s.a}${s.op}${s.b}=${s.c}`);
  return [...lines, `#### ${steps.at(-1)!.c}`].join("\n");
}

/**
 * Steps with the result of step `at` replaced by `value`, and every later step recomputed from
 * it (same operators and right operands), or `null` when a later step stops being a
 * non-negative integer within bounds.
 *
 * @param steps The clean steps.
 * @param at Index of the step to change.
 * @param value Its new result.
 * @returns The consistent wrong chain, or null.
 */
export function propagate(
  steps: readonly TraceStep[],
  at: number,
  value: number,
): TraceStep[] | null {
  const out = steps.slice(0, at);
  out.push({ ...steps[at], c: value });
  for (let k = at + 1; k < steps.length; k++) {
    const a = out[k - 1].c;
    const c = APPLY[steps[k].op](a, steps[k].b);
    if (c === null || c > VALUE_MAX) return null;
    out.push({ ...steps[k], a, c });
  }
  return out;
}

/**
 * One use of a trace in the warm-up: with probability `noise`, shift one step's result (the step
 * drawn uniformly) by ±1 … `noiseMax` (the sign flips when the result would go negative) and let
 * the later steps and the `#### N` line follow from it. A shift that makes a later step invalid
 * is drawn again, up to {@link SHIFT_TRIES} times; then the trace stays clean.
 *
 * Numbers drawn from `rng`, in order: the noise coin, the step, then a magnitude and a sign per
 * try. A fresh stream per (seed, step, row) makes every use reproducible on its own.
 *
 * @param solution A tiny-AIME trace.
 * @param rng The stream of this use.
 * @param options Noise probability and largest shift.
 * @returns The trace to learn from and which step was shifted.
 * @throws Error for an unparsable trace (only when the coin says to corrupt it).
 */
export function corruptTrace(solution: string, rng: Prng, options: NoiseOptions): NoisyTrace {
  if (!(rng.next() < options.noise)) return { solution, step: null };
  const steps = parseTrace(solution);
  if (steps.length === 0) return { solution, step: null };
  const at = rng.int(0, steps.length - 1);
  for (let t = 0; t < SHIFT_TRIES; t++) {
    const magnitude = rng.int(1, Math.max(1, options.noiseMax));
    const sign = rng.next() < 0.5 ? -1 : 1;
    const clean = steps[at].c;
    const value = clean + sign * magnitude < 0 ? clean + magnitude : clean + sign * magnitude;
    const wrong = propagate(steps, at, value);
    if (wrong !== null) return { solution: formatTrace(wrong), step: at };
  }
  return { solution, step: null };
}
