/**
 * The table of gradient rules, keyed by ONNX op type (default domain). Each entry says what kind
 * of op it is (see `GradKind`) and, for differentiable ops, holds a short pure rule: given the
 * forward node and its output gradients, return one gradient per input, `null` where there is
 * none. Rules emit ONNX nodes through the builder and never walk the graph; the driver in
 * `autodiff.ts` decides which inputs need gradients and sums what reaches each value.
 *
 * The rules live in four pieces, each with its formulas beside the code:
 * `_grad_elementwise.ts` (arithmetic, activations, Where, Clip), `_grad_reduce.ts` (Reduce*,
 * Softmax, LogSoftmax, CumSum), `_grad_linalg.ts` (MatMul, Gemm) and `_grad_shape.ts` (shape ops,
 * Slice, Concat, Split, gathers and scatters).
 *
 * Every op a rule emits runs on the WebGPU EP (kernels/README.md §2): no LogSoftmax, Sum,
 * OneHot, Sign, FusedMatMul or int64 arithmetic. The exceptions are documented where they occur
 * (a Slice of a symbolic axis at an offset from its end computes its pad on the CPU).
 *
 * @example
 * ```ts
 * import { GRAD_RULES } from "./grad_rules.ts";
 * GRAD_RULES.Exp.kind; // "uses-output"
 * GRAD_RULES.Floor.kind; // "zero"
 * ```
 *
 * @module
 */

import type { GradRule } from "./_grad_util.ts";
import { ELEMENTWISE_RULES } from "./_grad_elementwise.ts";
import { LINALG_RULES } from "./_grad_linalg.ts";
import { REDUCE_RULES } from "./_grad_reduce.ts";
import { SHAPE_RULES } from "./_grad_shape.ts";

export type { GradContext, GradFn, GradKind, GradRule } from "./_grad_util.ts";

/** Piecewise-constant ops: float inputs, but zero gradient almost everywhere. */
const ZERO_GRADIENT = [
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "ArgMax",
  "ArgMin",
  "IsNaN",
  "IsInf",
  "Shape",
  "Size",
] as const;

/** Ops on integer or bool data, or that make data from nothing: no gradient is defined. */
const NON_DIFFERENTIABLE = [
  "Not",
  "And",
  "Or",
  "Xor",
  "Range",
  "ConstantOfShape",
  "RandomUniform",
  "RandomNormal",
  "RandomUniformLike",
  "RandomNormalLike",
  "Multinomial",
  "OneHot",
] as const;

/** Every registered op type and its gradient rule. */
export const GRAD_RULES: Readonly<Record<string, GradRule>> = {
  ...ELEMENTWISE_RULES,
  ...REDUCE_RULES,
  ...LINALG_RULES,
  ...SHAPE_RULES,
  ...Object.fromEntries(ZERO_GRADIENT.map((op) => [op, { kind: "zero" } as GradRule])),
  ...Object.fromEntries(
    NON_DIFFERENTIABLE.map((op) => [op, { kind: "non-differentiable" } as GradRule]),
  ),
};
