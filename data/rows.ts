/**
 * The row every dataset turns into, built-in or downloaded, so stages treat both alike.
 *
 * @module
 */

/** How hard a problem is. Real benchmarks fill `level` where they have one (MATH: 1–5). */
export interface Difficulty {
  /** Overall level, 1 = easiest. */
  level: number;
  /** Number of reasoning steps (built-in task only). */
  steps?: number;
  /** Operand size tier (built-in task only). */
  operands?: "small" | "large";
  /** Problem family (built-in task only). */
  family?: string;
}

/** One problem with its gold answer. */
export interface ProblemRow {
  /** Stable id, unique within its dataset. */
  id: string;
  /** Problem text as given to the model (before any prompt template). */
  problem: string;
  /** Gold final answer, as a plain string (no `\boxed{}`, no `$`). */
  answer: string;
  /** Worked solution or step-by-step trace, where the dataset has one. */
  solution: string | null;
  /** Difficulty metadata, where the dataset has any. */
  difficulty: Difficulty | null;
}
