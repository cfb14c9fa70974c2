/**
 * Loss aggregation: how a matrix of per-token losses `L[i,t]` and a 0/1 mask `m[i,t]` become one
 * number (verl's `agg_loss`), split in two so the statistic scope can differ from the batch the
 * graph sees:
 *
 * - `denominator(mask)` is a scalar taken over the scope (the micro-batch in the graph, or the
 *   whole mini-batch by the selection graph, fed back as an input);
 * - `reduce(L, mask, den)` sums this graph's tokens against that denominator.
 *
 * Summing `reduce` over the micro-batches of a mini-batch whose denominators were taken over the
 * mini-batch gives the mode's formula over the mini-batch; in micro scope each micro-batch is
 * its own scope and the trainer scales each micro-batch loss by 1 / (number of micro-batches).
 *
 * | mode | formula over the scope | denominator |
 * | --- | --- | --- |
 * | `token-mean` | Σ m·L / Σ m | Σ m (all rows, all tokens of the scope) |
 * | `seq-mean-token-sum` | mean_i Σ_t m·L | number of rows |
 * | `seq-mean-token-mean` | mean_i (Σ_t m·L / Σ_t m) (DeepSeekMath's GRPO) | number of rows |
 * | `seq-mean-token-sum-norm` | Σ m·L / L_max (Dr.GRPO) | `aggNormLength`, or the mask's width |
 *
 * A zero denominator (a scope without valid tokens) counts as 1, so such a scope adds 0; a row
 * without valid tokens adds 0 to the sequence means but still counts as a row.
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Value } from "./ir.ts";
import type { AggMode, ResolvedLossOptions } from "./_loss_options.ts";

/** One aggregation mode. */
interface AggRule {
  /** Scalar denominator over the scope, from a [B, W] float mask. */
  denominator(b: GraphBuilder, mask: Value, options: ResolvedLossOptions): Value;
  /** Scalar: this graph's tokens `x` [B, W] under `mask` [B, W], over `den`. */
  reduce(b: GraphBuilder, x: Value, mask: Value, den: Value): Value;
}

/** Number of rows of a [B, W] value, as a float32 scalar. */
function rows(b: GraphBuilder, v: Value): Value {
  return b.cast(b.gather(b.shape(v), b.scalar(0, "int64")), "float32");
}

/** Σ over all tokens of mask·x (a float32 scalar). */
function maskedSum(b: GraphBuilder, x: Value, mask: Value): Value {
  return b.reduceSum(b.mul(x, mask), [0, 1], false);
}

const atLeastOne = (b: GraphBuilder, x: Value) => b.max(x, b.scalar(1));

const RULES: Readonly<Record<AggMode, AggRule>> = {
  "token-mean": {
    denominator: (b, mask) => b.reduceSum(mask, [0, 1], false),
    reduce: (b, x, mask, den) => b.div(maskedSum(b, x, mask), atLeastOne(b, den)),
  },
  "seq-mean-token-sum": {
    denominator: (b, mask) => rows(b, mask),
    reduce: (b, x, mask, den) => b.div(maskedSum(b, x, mask), atLeastOne(b, den)),
  },
  "seq-mean-token-mean": {
    denominator: (b, mask) => rows(b, mask),
    reduce: (b, x, mask, den) => {
      const perRow = b.div(
        b.reduceSum(b.mul(x, mask), [1], false), //                     [B]
        atLeastOne(b, b.reduceSum(mask, [1], false)),
      );
      return b.div(b.reduceSum(perRow, [0], false), atLeastOne(b, den));
    },
  },
  "seq-mean-token-sum-norm": {
    denominator: (b, mask, o) =>
      o.aggNormLength > 0
        ? b.scalar(o.aggNormLength)
        : b.cast(b.gather(b.shape(mask), b.scalar(1, "int64")), "float32"),
    reduce: (b, x, mask, den) => b.div(maskedSum(b, x, mask), atLeastOne(b, den)),
  },
};

/**
 * The scope's denominator of an aggregation mode.
 *
 * @param b Builder to record into.
 * @param mask [B, W] float 0/1 mask of the scope.
 * @param options The mode (`aggMode`) and `aggNormLength`.
 * @returns A float32 scalar.
 */
export function aggDenominator(b: GraphBuilder, mask: Value, options: ResolvedLossOptions): Value {
  return RULES[options.aggMode].denominator(b, mask, options);
}

/**
 * Aggregate per-token values of this graph's tokens against a scope denominator.
 *
 * @param b Builder to record into.
 * @param x [B, W] per-token values (finite at masked positions).
 * @param mask [B, W] float 0/1 mask.
 * @param den The scope's denominator (from {@link aggDenominator}).
 * @param options The mode.
 * @returns A float32 scalar.
 */
export function aggregate(
  b: GraphBuilder,
  x: Value,
  mask: Value,
  den: Value,
  options: ResolvedLossOptions,
): Value {
  return RULES[options.aggMode].reduce(b, x, mask, den);
}
