/**
 * Math-equivalence grading of final answers.
 *
 * @example
 * ```ts
 * import { mathEqual } from "./mod.ts";
 * mathEqual("\\dfrac{3}{4}", "0.75"); // true
 * ```
 *
 * @module
 */

export {
  answerCoverage,
  type Coverage,
  type GradeOptions,
  mathEqual,
  readShape,
  type Shape,
} from "./equal.ts";
export { answerKey, normalizeAnswer, type NormalizedAnswer, UNIT_WORDS } from "./normalize.ts";
export { evaluate, type Expr, freeVariables, parseExpr } from "./expr.ts";
export { type Tolerance, type Value, valuesEqual } from "./value.ts";
