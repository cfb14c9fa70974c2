/**
 * Tiny-AIME splits: a train set and two held-out eval sets (`tiny-aime24`, `tiny-aime25`) drawn
 * from the families in `families.ts`, deterministic by seed.
 *
 * Disjointness does not depend on seeds, sizes or knobs: every problem's canonical text is hashed
 * into one of {@link BUCKETS} buckets, bucket 0 belongs to `tiny-aime24`, bucket 1 to
 * `tiny-aime25` and the rest to the train split, and a split only accepts problems from its own
 * buckets.
 *
 * Every split draws from the same mix (the knobs of `families.ts`): step count by
 * `knobs.stepWeights`, then a family that can make it, then operands. Repeats are rejected, so
 * when the problems of one step count run out (the default knobs allow about 600 one-step
 * problems in all) the other counts fill in: the larger a split, the closer its mix gets to the
 * shape of the space itself.
 *
 * @module
 */

import { fnv1a32, makePrng } from "../_prng.ts";
import type { ProblemRow } from "../rows.ts";
import {
  ANSWER_MAX,
  DEFAULT_KNOBS,
  FAMILIES,
  knobProblems,
  type TinyAimeKnobs,
} from "./families.ts";

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

/** Number of hash buckets that partition the problem space between splits. */
export const BUCKETS = 10;

/**
 * Which buckets and default size each split uses. Each eval set owns one bucket (a tenth of the
 * problem space), the train split the other eight: with the default knobs the space holds about
 * 17,600 distinct problems, so a bucket has about 1,750, room for eval sets of 256 and more.
 */
export const SPLITS: Record<TinyAimeSplit, { buckets: (b: number) => boolean; size: number }> = {
  "tiny-aime-train": { buckets: (b) => b >= 2, size: 4000 },
  "tiny-aime24": { buckets: (b) => b === 0, size: 256 },
  "tiny-aime25": { buckets: (b) => b === 1, size: 256 },
};

/** Options for {@link generateTinyAime}. */
export interface TinyAimeOptions {
  /** Seed of the whole split (default 0). Same seed, same rows. */
  seed?: number | string;
  /** Number of problems (default: the split's size in {@link SPLITS}). */
  size?: number;
  /** Difficulty knobs (default {@link DEFAULT_KNOBS}). */
  knobs?: TinyAimeKnobs;
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
  const knobs = options.knobs ?? DEFAULT_KNOBS;
  const problems = knobProblems(knobs);
  if (problems.length > 0) throw new Error(`tiny-AIME knobs: ${problems.join("; ")}`);
  const stepMix = knobs.steps.map((s, i) => [s, knobs.stepWeights[i]] as const);
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
          `${maxAttempts} draws; ask for fewer problems or widen data.tinyAime (operandMax, ` +
          `multiplierMax, steps, families)`,
      );
    }
    const steps = rng.weighted(stepMix);
    const family = rng.weighted(
      knobs.families
        .filter((f) => FAMILIES[f].minSteps <= steps)
        .map((f) => [f, FAMILIES[f].weight] as const),
    );
    const draft = FAMILIES[family].generate(rng, steps, knobs);
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
      difficulty: { level: steps, steps, family },
    });
  }
  return { split, rows, attempts, rejected };
}
