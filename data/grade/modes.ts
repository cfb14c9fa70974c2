/**
 * Grader modes: which rules decide that an extracted answer equals the gold one. A run picks one
 * with the config key `grader.mode`; every stage that grades (semantic-entropy scoring, the
 * training reward, evaluation) uses it, and evaluation records it next to its numbers.
 *
 * | mode | rules | use it for |
 * | --- | --- | --- |
 * | `lenient` | normalised strings, then structure and value (`equal.ts`): `0.5` = `\frac{1}{2}`, `2x+3` = `3+2x` | "is the answer mathematically right?" |
 * | `opencompass-v2` | string rewrites only, exactly OpenCompass's v2 math evaluator (`opencompass_v2.ts`): `0.5` ≠ `\frac{1}{2}` | numbers comparable with the SENT paper's tables |
 *
 * @example
 * ```ts
 * import { graderFor } from "./modes.ts";
 * graderFor("lenient")("0.5", "\\frac{1}{2}"); // true
 * graderFor("opencompass-v2")("0.5", "\\frac{1}{2}"); // false
 * ```
 *
 * @module
 */

import { type GradeOptions, mathEqual } from "./equal.ts";
import { opencompassV2Equal } from "./opencompass_v2.ts";

/** An answer-equivalence function: pure, deterministic, never throws. */
export type Grader = (prediction: string, gold: string) => boolean;

/** One grader mode. */
export interface GraderMode {
  /** One line: what the mode compares and what it is for. */
  readonly doc: string;
  /** The grader, given the tolerance options (used only by modes that compare values). */
  readonly make: (options: GradeOptions) => Grader;
}

/** The registry of grader modes, keyed by the value of `grader.mode`. */
export const GRADER_MODES = {
  lenient: {
    doc: "normalised strings, then structure and value: 0.5 equals \\frac{1}{2}, units dropped",
    make: (options: GradeOptions) => (p: string, g: string) => mathEqual(p, g, options),
  },
  "opencompass-v2": {
    doc: "OpenCompass's v2 math evaluator (string rewrites, no arithmetic): the paper's tables",
    make: () => opencompassV2Equal,
  },
} as const satisfies Record<string, GraderMode>;

/** Name of a grader mode. */
export type GraderModeName = keyof typeof GRADER_MODES;

/** Names of the grader modes, in registry order. */
export const GRADER_MODE_NAMES: readonly GraderModeName[] = Object.keys(
  GRADER_MODES,
) as GraderModeName[];

/** The mode used when a run does not choose one. */
export const DEFAULT_GRADER_MODE: GraderModeName = "lenient";

/**
 * The grader of a mode.
 *
 * @param mode A mode name (`grader.mode`).
 * @param options Tolerances for modes that compare values (`lenient`).
 * @returns The grader.
 * @throws Error naming the mode and listing the known ones.
 * @example
 * ```ts
 * graderFor("opencompass-v2")("\\dfrac{1}{2}", "\\frac12"); // true
 * ```
 */
export function graderFor(mode: string, options: GradeOptions = {}): Grader {
  const entry: GraderMode | undefined = (GRADER_MODES as Record<string, GraderMode>)[mode];
  if (entry === undefined || !Object.hasOwn(GRADER_MODES, mode)) {
    throw new Error(
      `unknown grader mode "${mode}"; expected one of ${GRADER_MODE_NAMES.join(", ")}`,
    );
  }
  return entry.make(options);
}
