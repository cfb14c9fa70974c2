/**
 * AdamW with global-norm gradient clipping, as one update graph over many parameters.
 *
 * For gradients g_i of parameters p_i, step t (1-based, a float input) and learning rate lr (an
 * input, so schedules need no recompilation):
 * ```
 * n      = sqrt(Σ_i Σ g_i²)                          global gradient norm (reported before clipping)
 * c      = min(1, max_norm / (n + 1e-6))             clip factor, as torch.nn.utils.clip_grad_norm_
 * g_i'   = c · g_i
 * m_i'   = β1 · m_i + (1 − β1) · g_i'
 * v_i'   = β2 · v_i + (1 − β2) · g_i'²
 * p_i'   = p_i · (1 − lr · λ_i) − lr / (1 − β1^t) · m_i' / (sqrt(v_i') / sqrt(1 − β2^t) + ε)
 * ```
 * Decoupled weight decay λ_i (Loshchilov & Hutter, "Decoupled Weight Decay Regularization")
 * applies to parameters with `decay` set (default true); norms and biases usually opt out. The
 * bias correction matches torch.optim.AdamW. When n is not finite the step is skipped, as the SENT
 * reference trainer does: every output equals its input and `update_applied`
 * is 0. Finiteness is tested as `n < FLT_MAX` (false for NaN and ∞), since IsNaN/IsInf fall back
 * to the CPU under WebGPU.
 *
 * Names: for a parameter `p` the graph reads `p`, its gradient, `adam.m.p`, `adam.v.p`, and
 * writes `p.next`, `adam.m.p.next`, `adam.v.p.next`; `lr` and `step` are float32 scalars;
 * `grad_norm` and `update_applied` are scalar metrics.
 *
 * @example
 * ```ts
 * import { adamwGraph } from "./adamw.ts";
 * const { graph, state } = adamwGraph([{ name: "w", shape: [4, 3] }], { weightDecay: 0.01 });
 * state; // [{input:"w", output:"w.next"}, {input:"adam.m.w", …}, {input:"adam.v.w", …}]
 * ```
 *
 * @module
 */

import { GraphBuilder } from "./builder.ts";
import type { Graph, Shape, Value } from "./ir.ts";
import { FLOAT_DTYPES } from "./ir.ts";

/** Hyperparameters of AdamW. */
export interface AdamWOptions {
  /** First-moment decay β1; default 0.9. */
  beta1?: number;
  /** Second-moment decay β2; default 0.999. */
  beta2?: number;
  /** Denominator ε; default 1e-8. */
  eps?: number;
  /** Decoupled weight decay λ; default 0.01 (the SENT training scripts). */
  weightDecay?: number;
  /** Global gradient-norm clip; default 1.0 (the SENT training scripts); `Infinity` disables clipping. */
  maxGradNorm?: number;
}

/** The defaults of `AdamWOptions`, as used by the SENT scripts (the SENT training scripts). */
export const ADAMW_DEFAULTS: Readonly<Required<AdamWOptions>> = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  maxGradNorm: 1.0,
};

/** One parameter to update, inside an existing graph. */
export interface AdamWParam {
  /** Parameter name: the prefix of its state names. */
  readonly name: string;
  readonly param: Value;
  readonly grad: Value;
  /** Apply weight decay; default true. */
  readonly decay?: boolean;
}

/** A state input and the output that replaces it after the step. */
export interface StatePair {
  readonly input: string;
  readonly output: string;
}

/** What `adamwInto` added to the graph. */
export interface AdamWParts {
  /** Learning-rate input (float32 scalar). */
  readonly lr: Value;
  /** Step-count input t ≥ 1 (float32 scalar). */
  readonly step: Value;
  /** Parameters and moments: input → output. */
  readonly state: readonly StatePair[];
  /** Output `grad_norm`: the global norm before clipping. */
  readonly gradNorm: Value;
  /** Output `update_applied`: 1 when the step was applied, 0 when skipped (non-finite norm). */
  readonly applied: Value;
}

/** Largest finite float32: `n < FLT_MAX` is false for NaN and ±∞. */
const FLT_MAX = 3.4028234663852886e38;

/** State input name of a parameter's first moment. */
export function momentName(param: string, which: "m" | "v"): string {
  return `adam.${which}.${param}`;
}

/** Output name that replaces a state input. */
export function nextName(input: string): string {
  return `${input}.next`;
}

/**
 * Record one AdamW update over `params` into `b`: declares the moment, `lr` and `step` inputs
 * and the updated-state and metric outputs (see the module doc for names and formulas).
 *
 * @param b Builder holding the parameters and their gradients.
 * @param params Parameters with their gradients.
 * @param options Hyperparameters.
 * @returns The added inputs, state pairs and metrics.
 */
export function adamwInto(
  b: GraphBuilder,
  params: readonly AdamWParam[],
  options: AdamWOptions = {},
): AdamWParts {
  const o = { ...ADAMW_DEFAULTS, ...options };
  if (params.length === 0) throw new Error("adamwInto(): no parameters to update");
  const dt = params[0].param.dtype;
  for (const p of params) {
    if (!FLOAT_DTYPES.has(p.param.dtype) || p.param.dtype !== dt || p.grad.dtype !== dt) {
      throw new Error(
        `adamwInto(): parameter ${p.name} is ${p.param.dtype} with a ${p.grad.dtype} gradient; ` +
          `all parameters and gradients must share one float dtype (${dt})`,
      );
    }
  }
  const c = (x: number) => b.scalar(x, dt);
  const lr = b.input("lr", dt, []);
  const step = b.input("step", dt, []);

  // Global norm over every gradient: a chain of Adds (variadic Sum falls back to CPU on WebGPU).
  let sumSq: Value | undefined;
  for (const p of params) {
    const axes = p.grad.shape.map((_, i) => i);
    const s = axes.length ? b.reduceSumSquare(p.grad, axes, false) : b.mul(p.grad, p.grad);
    sumSq = sumSq ? b.add(sumSq, s) : s;
  }
  const norm = b.sqrt(sumSq!); //                                              []
  const finite = b.less(norm, c(FLT_MAX)); //                                   [] bool
  const clip = Number.isFinite(o.maxGradNorm)
    ? b.min(c(1), b.div(c(o.maxGradNorm), b.add(norm, c(1e-6))))
    : undefined;

  // Step-size scalars, shared by every parameter.
  const bc1 = b.sub(c(1), b.pow(c(o.beta1), step)); //                         1 − β1^t
  const sqrtBc2 = b.sqrt(b.sub(c(1), b.pow(c(o.beta2), step))); //             sqrt(1 − β2^t)
  const stepSize = b.div(lr, bc1); //                                          lr / (1 − β1^t)
  const decayFactor = b.sub(c(1), b.mul(lr, c(o.weightDecay))); //             1 − lr·λ

  const state: StatePair[] = [];
  const keepIfFinite = (fresh: Value, old: Value, name: string) => {
    b.output(b.where(finite, fresh, old), nextName(name));
    state.push({ input: name, output: nextName(name) });
  };
  for (const p of params) {
    const shape: Shape = p.param.shape;
    const m = b.input(momentName(p.name, "m"), dt, shape);
    const v = b.input(momentName(p.name, "v"), dt, shape);
    const g = clip ? b.mul(p.grad, clip) : p.grad; //                          g' = c·g
    const m1 = b.add(b.mul(m, c(o.beta1)), b.mul(g, c(1 - o.beta1)));
    const v1 = b.add(b.mul(v, c(o.beta2)), b.mul(b.mul(g, g), c(1 - o.beta2)));
    const denom = b.add(b.div(b.sqrt(v1), sqrtBc2), c(o.eps));
    const decayed = (p.decay ?? true) && o.weightDecay !== 0
      ? b.mul(p.param, decayFactor)
      : p.param;
    const p1 = b.sub(decayed, b.mul(stepSize, b.div(m1, denom)));
    keepIfFinite(p1, p.param, p.name);
    keepIfFinite(m1, m, m.name);
    keepIfFinite(v1, v, v.name);
  }
  const gradNorm = b.output(norm, "grad_norm");
  const applied = b.output(b.cast(finite, dt), "update_applied");
  return { lr, step, state, gradNorm, applied };
}

/** One parameter of a standalone AdamW graph. */
export interface AdamWParamSpec {
  readonly name: string;
  readonly shape: readonly number[];
  /** Apply weight decay; default true. */
  readonly decay?: boolean;
}

/** Name of a parameter's gradient input in `adamwGraph`. */
export function gradName(param: string): string {
  return `grad.${param}`;
}

/**
 * A standalone AdamW update graph whose gradients are inputs (`grad.<name>`); the train step
 * (`train_step.ts`) instead feeds gradients computed inside the same graph.
 *
 * @param params Parameter names and shapes (float32).
 * @param options Hyperparameters.
 * @returns The graph and its state pairs.
 */
export function adamwGraph(
  params: readonly AdamWParamSpec[],
  options: AdamWOptions = {},
): { graph: Graph; state: readonly StatePair[] } {
  const b = new GraphBuilder("adamw");
  const entries = params.map((p) => ({
    name: p.name,
    param: b.input(p.name, "float32", p.shape),
    grad: b.input(gradName(p.name), "float32", p.shape),
    decay: p.decay,
  }));
  const parts = adamwInto(b, entries, options);
  return { graph: b.build(), state: parts.state };
}

/** One parameter's values for `adamwReference`. */
export interface AdamWReferenceParam {
  readonly param: ArrayLike<number>;
  readonly grad: ArrayLike<number>;
  readonly m: ArrayLike<number>;
  readonly v: ArrayLike<number>;
  readonly decay?: boolean;
}

/**
 * Plain TypeScript AdamW step (float64), the reference for the graph.
 *
 * @param params Values of each parameter, its gradient and moments.
 * @param options Hyperparameters plus `lr` and `step`.
 * @returns Updated values per parameter, the global norm, and whether the step was applied.
 */
export function adamwReference(
  params: readonly AdamWReferenceParam[],
  options: AdamWOptions & { lr: number; step: number },
): {
  params: { param: Float64Array; m: Float64Array; v: Float64Array }[];
  gradNorm: number;
  applied: boolean;
} {
  const o = { ...ADAMW_DEFAULTS, ...options };
  let sumSq = 0;
  for (const p of params) for (let i = 0; i < p.grad.length; i++) sumSq += p.grad[i] ** 2;
  const gradNorm = Math.sqrt(sumSq);
  const applied = Number.isFinite(gradNorm);
  const clip = Number.isFinite(o.maxGradNorm) ? Math.min(1, o.maxGradNorm / (gradNorm + 1e-6)) : 1;
  const bc1 = 1 - o.beta1 ** o.step;
  const bc2 = 1 - o.beta2 ** o.step;
  const out = params.map((p) => {
    const n = p.param.length;
    const param = Float64Array.from(p.param);
    const m = Float64Array.from(p.m);
    const v = Float64Array.from(p.v);
    if (!applied) return { param, m, v };
    const wd = (p.decay ?? true) ? o.weightDecay : 0;
    for (let i = 0; i < n; i++) {
      const g = p.grad[i] * clip;
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
      param[i] = param[i] * (1 - o.lr * wd) - (o.lr / bc1) * (m[i] / denom);
    }
    return { param, m, v };
  });
  return { params: out, gradNorm, applied };
}
