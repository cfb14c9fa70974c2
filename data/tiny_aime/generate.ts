/**
 * Tiny-AIME splits: a train set and two held-out eval sets (`tiny-aime24`, `tiny-aime25`) drawn
 * from the families in `families.ts`, deterministic by seed.
 *
 * Disjointness does not depend on seeds or sizes: every problem's canonical text is hashed into
 * one of {@link BUCKETS} buckets, bucket 0 belongs to `tiny-aime24`, bucket 1 to `tiny-aime25`
 * and the rest to the train split, and a split only accepts problems from its own buckets.
 *
 * @module
 */

import { fnv1a32, makePrng } from "../_prng.ts";
import type { ProblemRow } from "../rows.ts";
import { ANSWER_MAX, FAMILIES, type OperandTier } from "./families.ts";

/** Names of the built-in splits. */
export type TinyAimeSplit = "tiny-aime-train" | "tiny-aime24" | "tiny-aime25";

/** Length limits, so a whole training sequence fits the policy's 128-character context. */
export const TINY_AIME_LIMITS = {
  /** Longest problem text. */
  problemChars: 48,
  /** Longest solution trace (steps and the `#### N` line). */
  solutionChars: 80,
  /** `<bos>` + problem + `\n` + solution + `<eos>`. */
  sequenceTokens: 128,
} as const;

/** How problems are mixed in a split. */
export interface TinyAimeMix {
  /** Weight of each step count. */
  steps: ReadonlyArray<readonly [number, number]>;
  /** Probability that a problem uses the large operand tier. */
  largeOperands: number;
  /** Weight of each family (only families that support the drawn step count compete). */
  families: ReadonlyArray<readonly [string, number]>;
}

const FAMILY_WEIGHTS = [["chain", 5], ["linear", 3], ["power", 2]] as const;

/** Train mix: mostly 1–4 steps, small operands more often. */
export const TRAIN_MIX: TinyAimeMix = {
  steps: [[1, 0.2], [2, 0.25], [3, 0.25], [4, 0.2], [5, 0.1]],
  largeOperands: 0.4,
  families: FAMILY_WEIGHTS,
};

/** Eval mix: harder, more steps and larger operands (the AIME role). */
export const EVAL_MIX: TinyAimeMix = {
  steps: [[1, 0.05], [2, 0.2], [3, 0.3], [4, 0.3], [5, 0.15]],
  largeOperands: 0.6,
  families: FAMILY_WEIGHTS,
};

/** Number of hash buckets that partition the problem space between splits. */
export const BUCKETS = 20;

/** Which buckets, default size and mix each split uses. */
export const SPLITS: Record<
  TinyAimeSplit,
  { buckets: (b: number) => boolean; size: number; mix: TinyAimeMix }
> = {
  "tiny-aime-train": { buckets: (b) => b >= 2, size: 4000, mix: TRAIN_MIX },
  "tiny-aime24": { buckets: (b) => b === 0, size: 100, mix: EVAL_MIX },
  "tiny-aime25": { buckets: (b) => b === 1, size: 100, mix: EVAL_MIX },
};

/** Options for {@link generateTinyAime}. */
export interface TinyAimeOptions {
  /** Seed of the whole split (default 0). Same seed, same rows. */
  seed?: number | string;
  /** Number of problems (default: the split's size in {@link SPLITS}). */
  size?: number;
}

/** Rows of a split and how many draws were rejected, by reason. */
export interface TinyAimeSet {
  split: TinyAimeSplit;
  rows: ProblemRow[];
  attempts: number;
  rejected: Record<string, number>;
}

/**
 * Canonical text of a problem, the key for duplicate and disjointness checks.
 *
 * @param problem Problem text.
 * @returns The text without whitespace.
 */
export function canonicalProblem(problem: string): string {
  return problem.replace(/\s+/g, "");
}

/**
 * Bucket of a problem in [0, BUCKETS): decides which split may hold it.
 *
 * @param problem Problem text.
 * @returns The bucket index.
 */
export function problemBucket(problem: string): number {
  return fnv1a32(`tiny-aime-bucket:${canonicalProblem(problem)}`) % BUCKETS;
}

/**
 * Generate one split of the tiny-AIME task.
 *
 * @param split Which split.
 * @param options Seed and size.
 * @returns The rows (ids `<split>-0000` …) with difficulty metadata, and rejection counts.
 * @example
 * ```ts
 * const { rows } = generateTinyAime("tiny-aime24", { seed: 1, size: 5 });
 * rows[0].solution!.endsWith(`#### ${rows[0].answer}`); // true
 * ```
 */
export function generateTinyAime(split: TinyAimeSplit, options: TinyAimeOptions = {}): TinyAimeSet {
  const spec = SPLITS[split];
  if (!spec) {
    throw new Error(
      `unknown tiny-AIME split "${split}"; expected one of ${Object.keys(SPLITS).join(", ")}`,
    );
  }
  const size = options.size ?? spec.size;
  if (!Number.isInteger(size) || size < 0) {
    throw new Error(`tiny-AIME size must be a non-negative integer, got ${size}`);
  }
  const rng = makePrng(`tiny-aime:${options.seed ?? 0}:${split}`);
  const seen = new Set<string>();
  const rows: ProblemRow[] = [];
  const rejected: Record<string, number> = {};
  const reject = (reason: string) => (rejected[reason] = (rejected[reason] ?? 0) + 1);
  const maxAttempts = 2000 * Math.max(size, 1);
  let attempts = 0;
  while (rows.length < size) {
    if (++attempts > maxAttempts) {
      throw new Error(
        `tiny-AIME split "${split}" found only ${rows.length} of ${size} distinct problems in ` +
          `${maxAttempts} draws; ask for fewer problems`,
      );
    }
    const steps = rng.weighted(spec.mix.steps);
    const tier: OperandTier = rng.next() < spec.mix.largeOperands ? "large" : "small";
    const family = rng.weighted(
      spec.mix.families.filter(([f]) => FAMILIES[f].steps.includes(steps)),
    );
    const draft = FAMILIES[family].generate(rng, steps, tier);
    if (draft === null) {
      reject("bound");
      continue;
    }
    if (draft.answer < 0 || draft.answer > ANSWER_MAX) {
      reject("answer range");
      continue;
    }
    const solution = [...draft.steps, `#### ${draft.answer}`].join("\n");
    if (
      draft.problem.length > TINY_AIME_LIMITS.problemChars ||
      solution.length > TINY_AIME_LIMITS.solutionChars ||
      draft.problem.length + solution.length + 3 > TINY_AIME_LIMITS.sequenceTokens
    ) {
      reject("length");
      continue;
    }
    if (!spec.buckets(problemBucket(draft.problem))) {
      reject("other split");
      continue;
    }
    const key = canonicalProblem(draft.problem);
    if (seen.has(key)) {
      reject("duplicate");
      continue;
    }
    seen.add(key);
    rows.push({
      id: `${split}-${String(rows.length).padStart(4, "0")}`,
      problem: draft.problem,
      answer: String(draft.answer),
      solution,
      difficulty: { level: steps + (tier === "large" ? 1 : 0), steps, operands: tier, family },
    });
  }
  return { split, rows, attempts, rejected };
}
