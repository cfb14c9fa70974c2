/**
 * Gradient rules of reductions and normalisers: Reduce*, Softmax, LogSoftmax, CumSum.
 * A reduction's gradient first gets its reduced axes back (size 1, `keepReduced`), then
 * broadcasts against x; it is materialised at x's shape only where the rule must (ReduceSum,
 * ReduceMean), otherwise the broadcast happens inside the elementwise op that needs it.
 *
 * @module
 */

import type { Value } from "./ir.ts";
import type { GradContext, GradRule } from "./_grad_util.ts";
import {
  attrInt,
  countOf,
  each,
  expandTarget,
  inp,
  keepReduced,
  out,
  reduceAxes,
  rule,
  scalarOf,
} from "./_grad_util.ts";
import { normAxis } from "./ops.ts";

/** The output gradient with the reduced axes restored as size-1 axes, and those axes. */
function kept(c: GradContext, g: Value): { g: Value; axes: number[] } {
  const axes = reduceAxes(c.node);
  return { g: keepReduced(c.b, c.node, g, axes), axes };
}

/** The forward output with its reduced axes restored (for rules that reuse y). */
function keptOutput(c: GradContext, axes: number[]): Value {
  return keepReduced(c.b, c.node, out(c), axes);
}

/** The Softmax/LogSoftmax axis (opset 13+: default −1), normalised. */
function softmaxAxis(c: GradContext): number {
  const x = inp(c, 0);
  return normAxis(attrInt(c.node, "axis", -1), x.shape.length);
}

/**
 * ReduceMax/ReduceMin: the gradient goes to the elements equal to the extremum, split evenly
 * among ties: dx = g·[x = y] / Σ[x = y].
 */
function extremumGrad(c: GradContext): (Value | null)[] {
  return each(c, (g0) => {
    const b = c.b;
    const { g, axes } = kept(c, g0);
    const x = inp(c, 0);
    if (axes.length === 0) return g;
    const mask = b.cast(b.equal(x, keptOutput(c, axes)), x.dtype);
    const ties = b.reduceSum(mask, axes, true);
    return b.mul(mask, b.div(g, ties));
  });
}

/** Gradient rules of reductions and normalisers, keyed by ONNX op type. */
export const REDUCE_RULES: Readonly<Record<string, GradRule>> = {
  // y = Σ_axes x: dx = g broadcast back over the reduced axes.
  ReduceSum: rule("linear", (c) =>
    each(c, (g0) => {
      const { g, axes } = kept(c, g0);
      return axes.length === 0 ? g : c.b.expand(g, expandTarget(c.b, inp(c, 0), axes));
    })),
  // y = Σ_axes x / n: dx = g/n broadcast back (n counted at run time for symbolic dims).
  ReduceMean: rule("linear", (c) =>
    each(c, (g0) => {
      const { g, axes } = kept(c, g0);
      if (axes.length === 0) return g;
      const x = inp(c, 0);
      const scaled = c.b.div(g, countOf(c.b, x, axes, x.dtype));
      return c.b.expand(scaled, expandTarget(c.b, x, axes));
    })),
  ReduceMax: rule("uses-output", extremumGrad),
  ReduceMin: rule("uses-output", extremumGrad),
  // y = log Σ_axes eˣ: dx = g·e^(x − y).
  ReduceLogSumExp: rule("uses-output", (c) =>
    each(c, (g0) => {
      const { g, axes } = kept(c, g0);
      return c.b.mul(c.b.exp(c.b.sub(inp(c, 0), keptOutput(c, axes))), g);
    })),
  // y = Σ_axes x²: dx = 2x·g.
  ReduceSumSquare: rule("uses-input", (c) =>
    each(c, (g0) => {
      const x = inp(c, 0);
      return c.b.mul(x, c.b.mul(kept(c, g0).g, scalarOf(c.b, 2, x.dtype)));
    })),
  // y = softmax(x): dx = y ⊙ (g − Σ_axis g ⊙ y).
  Softmax: rule("uses-output", (c) =>
    each(c, (g) => {
      const y = out(c);
      const dot = c.b.reduceSum(c.b.mul(g, y), [softmaxAxis(c)], true);
      return c.b.mul(y, c.b.sub(g, dot));
    })),
  // y = x − logsumexp(x): dx = g − e^y ⊙ Σ_axis g (no LogSoftmax emitted).
  LogSoftmax: rule("uses-output", (c) =>
    each(c, (g) => {
      const total = c.b.reduceSum(g, [softmaxAxis(c)], true);
      return c.b.sub(g, c.b.mul(c.b.exp(out(c)), total));
    })),
  // y = cumsum(x): dx = the cumsum of g in the other direction (exclusive stays exclusive), along
  // the forward's own axis input (int32 or int64, whichever the forward used).
  CumSum: rule("linear", (c) =>
    each(c, (g) =>
      c.b.op1("CumSum", [g, c.node.inputs[1]!], {
        exclusive: attrInt(c.node, "exclusive", 0),
        reverse: 1 - attrInt(c.node, "reverse", 0),
      }))),
};
