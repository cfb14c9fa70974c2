/**
 * The built-in "AIME-style" task at tiny scale: multi-step integer problems with answers 0–999,
 * step-by-step traces for the warm-up (optionally corrupted, `noise.ts`), a train split and two
 * held-out eval splits.
 *
 * @example
 * ```ts
 * import { generateTinyAime } from "./mod.ts";
 * const { rows } = generateTinyAime("tiny-aime-train", { seed: 0, size: 3 });
 * ```
 *
 * @module
 */

export * from "./families.ts";
export * from "./generate.ts";
export * from "./noise.ts";
