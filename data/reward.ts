/**
 * The outcome reward of one response: extract its final answer, grade it against the gold answer,
 * and score it +1 (correct) or −1 (wrong or unparsable).
 *
 * This follows the DAPO convention the SENT paper / verl reference implementation train with: the
 * reward is a single number per response, placed by the trainer on its last response token, and
 * there is no partial credit and no separate format reward. A response with no extractable answer
 * (for example a chain of thought cut off by the length limit) scores −1, the same as a wrong one.
 *
 * ## Contract
 *
 * `reward(response, gold, options?)` is a plain, pure, synchronous function:
 *
 * - `response` is the decoded completion only (no prompt), special tokens already removed.
 * - `gold` is the dataset's gold answer text (for example `"36"` or `"\\frac{1}{2}"`).
 * - `options.extraction` says which extractors to try, in order, and optionally how many trailing
 *   characters to look at. Use the dataset's own `extraction` (from `loadDataset`): the built-in
 *   task reads `#### N` (`TINY_AIME_EXTRACTION`); training on real models reads the last
 *   `Answer:` line, then the last `\boxed{}` (`REWARD_EXTRACTION`, the default here).
 * - `options.mode` names the grader mode (`lenient` by default, `opencompass-v2` for the paper's
 *   harness rules; data/grade/modes.ts); `options.grade` passes tolerances to it. A custom
 *   `options.equal` wins over both.
 * - It returns `{ reward, answer, extraction }`: `reward` is exactly `1` or `-1`; `answer` is the
 *   extracted text (`null` when unparsable); `extraction` is the extractor's full outcome, so
 *   callers can count which extractor fired (`summarizeExtractions`).
 * - It never throws on model output. It throws only on a bad configuration (an unknown extractor
 *   name), naming it.
 * - The same inputs always give the same output (the grader's random points are seeded).
 *
 * @example
 * ```ts
 * import { reward } from "./reward.ts";
 * import { TINY_AIME_EXTRACTION } from "./extract.ts";
 * reward("12*3=36\n#### 36", "36", { extraction: TINY_AIME_EXTRACTION }).reward; // 1
 * reward("so the result is \\boxed{0.5}", "\\frac{1}{2}").reward; // 1
 * reward("I am not sure.", "7"); // { reward: -1, answer: null, extraction: { kind: "unparsable" } }
 * ```
 *
 * @module
 */

import {
  extractAnswer,
  type Extraction,
  type ExtractorConfig,
  REWARD_EXTRACTION,
} from "./extract.ts";
import { DEFAULT_GRADER_MODE, type GradeOptions, graderFor } from "./grade/mod.ts";

/** Reward of a correct response. */
export const CORRECT_REWARD = 1;
/** Reward of a wrong or unparsable response. */
export const WRONG_REWARD = -1;

/** Options for {@link reward}. */
export interface RewardOptions {
  /**
   * Extractors to try, in order (first hit wins), and an optional tail window. Default
   * `REWARD_EXTRACTION` (last `Answer:` line, then last `\boxed{}`); pass the dataset's own
   * `extraction`, e.g. `TINY_AIME_EXTRACTION` (`#### N`) for the built-in task.
   */
  extraction?: ExtractorConfig;
  /** Grader mode (`grader.mode`): `lenient` (default) or `opencompass-v2`. */
  mode?: string;
  /** Tolerances and random-point count handed to the mode's grader (`lenient` uses them). */
  grade?: GradeOptions;
  /**
   * Grader deciding whether an extracted answer matches the gold answer. Default: the grader of
   * `mode` with `grade`. Must be pure and deterministic.
   */
  equal?: (prediction: string, gold: string) => boolean;
}

/** What {@link reward} returns for one response. */
export interface RewardResult {
  /** `1` when the extracted answer equals the gold answer, `-1` otherwise (also when unparsable). */
  reward: 1 | -1;
  /** The extracted answer, or `null` when no extractor found one. */
  answer: string | null;
  /** The extractor's outcome (which extractor fired, or `unparsable`). */
  extraction: Extraction;
}

/**
 * Score one response: +1 if its extracted final answer grades equal to `gold`, else −1.
 *
 * @param response Decoded completion (without the prompt).
 * @param gold Gold final answer.
 * @param options Extractor order, grader and grader options.
 * @returns Reward (±1), the extracted answer (null when unparsable) and the extraction outcome.
 * @throws Error naming an unknown extractor in `options.extraction.order` or an unknown
 *   `options.mode`.
 * @example
 * ```ts
 * import { reward } from "./reward.ts";
 * reward("work...\nAnswer: $\\frac{3}{4}$", "0.75"); // { reward: 1, answer: "\\frac{3}{4}", … }
 * reward("Answer: 5", "6").reward; // -1
 * ```
 */
export function reward(response: string, gold: string, options: RewardOptions = {}): RewardResult {
  const extraction = extractAnswer(response, options.extraction ?? REWARD_EXTRACTION);
  if (extraction.kind !== "answer") {
    return { reward: WRONG_REWARD, answer: null, extraction };
  }
  const equal = options.equal ?? graderFor(options.mode ?? DEFAULT_GRADER_MODE, options.grade);
  const correct = equal(extraction.value, gold);
  return { reward: correct ? CORRECT_REWARD : WRONG_REWARD, answer: extraction.value, extraction };
}
