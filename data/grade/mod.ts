/**
 * Math-equivalence grading of final answers, in two modes (`modes.ts`): `lenient` (`mathEqual`:
 * strings, structure and value) and `opencompass-v2` (`opencompassV2Equal`: the string rules of
 * the SENT paper's evaluation harness).
 *
 * @example
 * ```ts
 * import { graderFor, mathEqual } from "./mod.ts";
 * mathEqual("\\dfrac{3}{4}", "0.75"); // true
 * graderFor("opencompass-v2")("\\dfrac{3}{4}", "0.75"); // false
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
export {
  DEFAULT_GRADER_MODE,
  type Grader,
  GRADER_MODE_NAMES,
  GRADER_MODES,
  graderFor,
  type GraderMode,
  type GraderModeName,
} from "./modes.ts";
export {
  NORMALIZE_RULES,
  normalizeV2,
  opencompassV2Equal,
  REMOVED_EXPRESSIONS,
  type RewriteRule,
  RuleFailure,
  STRIP_V2_RULES,
  stripV2,
} from "./opencompass_v2.ts";
