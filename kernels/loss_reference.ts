/**
 * Plain float64 TypeScript references of the policy losses in `losses.ts`, written from the
 * formulas (not from the graph code) so the tests can check every entry: loss value, gradient
 * with respect to the current log-probs and entropies, metrics and selections.
 *
 * The batch given is one statistic scope (a micro-batch, or a whole mini-batch for the mini
 * scope). Selections and denominators do not carry gradient, so with them fixed every token's
 * loss depends on its own log-prob only; gradients come from forward-mode dual numbers per token.
 * At a tie of max/min the derivative is the mean of both sides, as ORT's and torch's gradients
 * split it. Ties in a selection go to the lower flat index.
 *
 * @example
 * ```ts
 * import { lossReference } from "./loss_reference.ts";
 * const r = lossReference("grpo", {}, {
 *   batch: 1, width: 2, logp: [-1, -2], entropy: [1, 1], oldLogp: [-1, -2], refLogp: [-1, -2],
 *   oldEntropy: [1, 1], advantages: [1], mask: [1, 1],
 * });
 * r.loss; // -1: −A·r with r = 1 on both tokens
 * ```
 *
 * @module
 */

import { K3_CLAMP } from "./fused.ts";
import { type LossMetric, type LossOptions, resolveLossOptions } from "./losses.ts";
import type { ResolvedLossOptions } from "./_loss_options.ts";

/** One scope of host values, row-major [batch, width] unless noted. */
export interface LossBatch {
  readonly batch: number;
  readonly width: number;
  readonly logp: ArrayLike<number>;
  readonly entropy: ArrayLike<number>;
  readonly oldLogp: ArrayLike<number>;
  readonly refLogp: ArrayLike<number>;
  readonly oldEntropy: ArrayLike<number>;
  /** [batch]. */
  readonly advantages: ArrayLike<number>;
  readonly mask: ArrayLike<number>;
  /** Clip-Cov's uniforms. */
  readonly uniforms?: ArrayLike<number>;
  /** Factor of the whole loss (default 1). */
  readonly lossScale?: number;
}

/** What the reference computes. */
export interface LossReference {
  readonly loss: number;
  /** dloss/dlogp [batch·width]. */
  readonly gradLogp: Float64Array;
  /** dloss/dentropy [batch·width]. */
  readonly gradEntropy: Float64Array;
  readonly metrics: Readonly<Record<LossMetric, number>>;
  /** The token selections (0/1 per token) and denominators, by name. */
  readonly select: Readonly<Record<string, Float64Array | number>>;
}

// ----- dual numbers: value and derivative with respect to one token's log-prob ----------------

interface Dual {
  readonly v: number;
  readonly d: number;
}
const cst = (v: number): Dual => ({ v, d: 0 });
const add = (a: Dual, b: Dual): Dual => ({ v: a.v + b.v, d: a.d + b.d });
const sub = (a: Dual, b: Dual): Dual => ({ v: a.v - b.v, d: a.d - b.d });
const mul = (a: Dual, b: Dual): Dual => ({ v: a.v * b.v, d: a.d * b.v + a.v * b.d });
const exp = (a: Dual): Dual => ({ v: Math.exp(a.v), d: Math.exp(a.v) * a.d });
const abs = (a: Dual): Dual => ({ v: Math.abs(a.v), d: Math.sign(a.v) * a.d });
const clamp = (a: Dual, lo: number, hi: number): Dual =>
  a.v < lo ? cst(lo) : a.v > hi ? cst(hi) : a;
const max = (a: Dual, b: Dual): Dual =>
  a.v > b.v ? a : a.v < b.v ? b : { v: a.v, d: (a.d + b.d) / 2 };
const min = (a: Dual, b: Dual): Dual =>
  a.v < b.v ? a : a.v > b.v ? b : { v: a.v, d: (a.d + b.d) / 2 };

// ----- the scope -----------------------------------------------------------------------------

/** A scope: its values by flat index, with helpers. */
interface Scope {
  readonly o: ResolvedLossOptions;
  readonly n: number;
  readonly batch: LossBatch;
  readonly valid: Float64Array;
  /** Advantage of flat token i (its row's). */
  adv(i: number): number;
}

function scopeOf(o: ResolvedLossOptions, batch: LossBatch): Scope {
  const n = batch.batch * batch.width;
  const valid = Float64Array.from({ length: n }, (_, i) => (batch.mask[i] > 0 ? 1 : 0));
  return { o, n, batch, valid, adv: (i) => batch.advantages[Math.floor(i / batch.width)] };
}

/** `max(floor(f · n), 1)` as Python's `max(int(n * f), 1)`. */
function fractionCount(n: number, f: number): number {
  return Math.max(Math.floor(n * f), 1);
}

/** The k eligible tokens with the largest (smallest) key; ties to the lower index. */
function pick(key: (i: number) => number, eligible: Float64Array, k: number, largest: boolean) {
  const idx = [...eligible.keys()].filter((i) => eligible[i] > 0);
  idx.sort((a, b) => (largest ? key(b) - key(a) : key(a) - key(b)) || a - b);
  const out = new Float64Array(eligible.length);
  for (const i of idx.slice(0, k)) out[i] = 1;
  return out;
}

const sum = (x: ArrayLike<number>) => Array.from(x).reduce((s, v) => s + v, 0);

/** Mean of f(i) over the tokens of a mask (0 for an empty mask). */
function meanOver(mask: Float64Array, f: (i: number) => number): number {
  let s = 0;
  let c = 0;
  mask.forEach((m, i) => {
    if (m > 0) {
      s += f(i);
      c++;
    }
  });
  return c > 0 ? s / c : 0;
}

/** (a − ā)(ℓ − ℓ̄) with means over the mask. */
function covariance(a: (i: number) => number, l: (i: number) => number, mask: Float64Array) {
  const am = meanOver(mask, a);
  const lm = meanOver(mask, l);
  return (i: number) => (a(i) - am) * (l(i) - lm);
}

/** The rows the reference code's int64-mask gather reads (see `rowGathered` in _loss_select). */
function rowGathered(s: Scope): { adv: (i: number) => number; logp: (i: number) => number } {
  const { batch: B, width: L, mask, logp } = s.batch;
  const starts = Array.from({ length: B }, (_, r) => {
    for (let c = 0; c < L; c++) if (mask[r * L + c] > 0) return c;
    return 0;
  });
  const validIndex = new Float64Array(s.n);
  let count = 0;
  for (let i = 0; i < s.n; i++) {
    if (s.valid[i] > 0) count++;
    validIndex[i] = Math.max(count - 1, 0);
  }
  // Flat index of response-aligned (row, col), or -1 past the row's end.
  const aligned = (row: number, col: number) => {
    const c = starts[row] + col;
    return c < L ? row * L + c : -1;
  };
  const source = (i: number) => {
    const p = validIndex[i];
    const q = Math.floor(p / L);
    const qi = aligned(Math.min(Math.floor(q / L), B - 1), q % L);
    const row = Math.min(qi >= 0 ? (s.valid[qi] > 0 ? 1 : 0) : 0, B - 1);
    return aligned(row, p % L);
  };
  return {
    adv: (i) => {
      const j = source(i);
      return j < 0 ? 0 : s.valid[j] * s.adv(j);
    },
    logp: (i) => {
      const j = source(i);
      return j < 0 ? 0 : logp[j];
    },
  };
}

// ----- per-method references -----------------------------------------------------------------

/** One method's reference: selections, per-token loss as a dual, per-token metrics. */
interface MethodReference {
  readonly select: Record<string, Float64Array>;
  /** Policy aggregation mask (default the valid tokens). */
  readonly policyMask?: string;
  token(i: number, logp: Dual, a: number): Dual;
  readonly ppoKl?: (i: number) => number;
  readonly pgClipfrac?: (i: number) => number;
  readonly pgClipfracLower?: (i: number) => number;
  /** Advantage of token i used by the loss (default the row's). */
  readonly advantage?: (i: number) => number;
}

const logpOf = (s: Scope) => (i: number) => s.valid[i] * s.batch.logp[i];
const oldOf = (s: Scope) => (i: number) => s.valid[i] * s.batch.oldLogp[i];
const entropyOf = (s: Scope) => (i: number) => s.valid[i] * s.batch.entropy[i];

/** verl's clipped surrogate with dual clip on one token. */
function ppoToken(o: ResolvedLossOptions, a: number, logp: Dual, old: number): Dual {
  const d = clamp(sub(logp, cst(old)), -20, 20);
  const r = exp(d);
  const l1 = mul(cst(-a), r);
  const l2 = mul(cst(-a), clamp(r, 1 - o.clipLow, 1 + o.clipHigh));
  const lc = max(l1, l2);
  return a < 0 ? min(cst(-a * o.dualClipC), lc) : lc;
}

function ppoMetrics(s: Scope, adv: (i: number) => number) {
  const o = s.o;
  const parts = (i: number) => {
    const d = Math.min(Math.max(logpOf(s)(i) - oldOf(s)(i), -20), 20);
    const r = Math.exp(d);
    const a = adv(i);
    const l1 = -a * r;
    const l2 = -a * Math.min(Math.max(r, 1 - o.clipLow), 1 + o.clipHigh);
    return { d, a, l1, l2, lc: Math.max(l1, l2) };
  };
  return {
    ppoKl: (i: number) => -parts(i).d,
    pgClipfrac: (i: number) => (parts(i).l2 > parts(i).l1 ? 1 : 0),
    pgClipfracLower: (i: number) => {
      const p = parts(i);
      return p.a < 0 && p.lc > -p.a * o.dualClipC ? 1 : 0;
    },
  };
}

function grpoRef(s: Scope): MethodReference {
  const old = oldOf(s);
  return {
    select: {},
    token: (i, l, a) => ppoToken(s.o, a, l, old(i)),
    ...ppoMetrics(s, s.adv),
  };
}

function entropyAdvRef(s: Scope): MethodReference {
  const { o } = s;
  const adv = (i: number) => {
    const a = s.adv(i);
    return a + Math.min(o.entropyAlpha * s.valid[i] * s.batch.oldEntropy[i], Math.abs(a) / o.kappa);
  };
  const old = oldOf(s);
  return {
    select: {},
    advantage: adv,
    token: (i, l, a) => ppoToken(o, a, l, old(i)),
    ...ppoMetrics(s, adv),
  };
}

function maskRef(s: Scope): MethodReference {
  const h = entropyOf(s);
  const sorted = [...s.valid.keys()].filter((i) => s.valid[i] > 0).map(h).sort((a, b) => a - b);
  const n = sorted.length;
  // Linear-interpolation quantile, with the position computed in float32 as torch does.
  const pos = Math.fround(Math.fround(1 - s.o.entropyTopRatio) * (n - 1));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const tau = n > 0 ? sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]) : Infinity;
  const set = Float64Array.from(s.valid, (v, i) => (v > 0 && h(i) >= tau ? 1 : 0));
  const base = grpoRef(s);
  return {
    ...base,
    select: { entropy_set: set },
    policyMask: s.o.normalizer === "selected" ? "entropy_set" : undefined,
    token: (i, l, a) => mul(base.token(i, l, a), cst(set[i])),
  };
}

function clipCovRef(s: Scope): MethodReference {
  const { o } = s;
  const logp = logpOf(s);
  const old = oldOf(s);
  const cov = covariance(s.adv, logp, s.valid);
  const clipped = (i: number) => {
    const r = Math.exp(logp(i) - old(i));
    const a = s.adv(i);
    return -a * Math.min(Math.max(r, 1 - o.clipLow), 1 + o.clipHigh) > -a * r;
  };
  const candidates = Float64Array.from(
    s.valid,
    (v, i) => (v > 0 && cov(i) > o.clipCovLb && cov(i) < o.clipCovUb && !clipped(i) ? 1 : 0),
  );
  const u = s.batch.uniforms!;
  const zeroed = pick((i) => u[i], candidates, fractionCount(sum(s.valid), o.clipCovRatio), false);
  return {
    select: { zeroed },
    token: (i, l, a) => {
      const r = exp(sub(l, cst(old(i))));
      const l1 = mul(cst(-a), r);
      const l2 = mul(cst(-a), clamp(r, 1 - o.clipLow, 1 + o.clipHigh));
      return mul(max(l1, l2), cst(1 - zeroed[i]));
    },
    ppoKl: (i) => old(i) - logp(i),
    pgClipfrac: (i) => zeroed[i],
  };
}

/** −A·r + w·|ℓ − ℓ_old| on one token. */
function penalised(a: number, l: Dual, old: number, w: number): Dual {
  const logRatio = sub(l, cst(old));
  return add(mul(cst(-a), exp(logRatio)), mul(cst(w), abs(logRatio)));
}

function klCovRef(s: Scope): MethodReference {
  const logp = logpOf(s);
  const old = oldOf(s);
  const cov = covariance(s.adv, logp, s.valid);
  const hi = pick(cov, s.valid, fractionCount(sum(s.valid), s.o.klCovRatio), true);
  return {
    select: { cov_hi: hi },
    token: (i, l, a) => penalised(a, l, old(i), s.o.ppoKlCoef * hi[i]),
    ppoKl: (i) => Math.abs(logp(i) - old(i)),
  };
}

function sentRef(s: Scope): MethodReference {
  const { o } = s;
  const logp = logpOf(s);
  const old = oldOf(s);
  const kSet = fractionCount(sum(s.valid), o.fraction);
  const set = pick(entropyOf(s), s.valid, kSet, o.selection === "high");
  const beta = o.ppoKlCoef;
  const common = { ppoKl: (i: number) => Math.abs(logp(i) - old(i)) };
  if (o.variant === "v1") {
    return {
      ...common,
      select: { entropy_set: set },
      policyMask: "entropy_set",
      token: (i, l, a) => penalised(a, l, old(i), beta * set[i]),
    };
  }
  const values = o.variant === "v2-literal"
    ? rowGathered(s)
    : { adv: (i: number) => s.valid[i] * s.adv(i), logp };
  const cov = covariance(values.adv, values.logp, set);
  const k = fractionCount(kSet, o.klCovRatio);
  const hi = pick(cov, set, k, true);
  const lo = pick(cov, set, k, false);
  const weight = o.variant === "paper"
    ? (i: number) => beta * set[i] + beta * o.hiMult * hi[i]
    : (i: number) => (lo[i] > 0 ? beta * o.loMult : hi[i] > 0 ? beta * o.hiMult : 0);
  return {
    ...common,
    select: o.variant === "paper"
      ? { entropy_set: set, cov_hi: hi }
      : { entropy_set: set, cov_hi: hi, cov_lo: lo },
    token: (i, l, a) => penalised(a, l, old(i), weight(i)),
  };
}

const REFERENCES: Readonly<Record<string, (s: Scope) => MethodReference>> = {
  grpo: grpoRef,
  entropy_bonus: grpoRef,
  entropy_adv: entropyAdvRef,
  high_entropy_mask: maskRef,
  clip_cov: clipCovRef,
  kl_cov: klCovRef,
  high_en: sentRef,
  sent: sentRef,
};

// ----- aggregation and the whole loss ----------------------------------------------------------

/** Per-token aggregation weights of a mask: the loss is Σ w·L. */
function aggWeights(s: Scope, mask: Float64Array): { weights: Float64Array; den: number } {
  const { batch: B, width: W } = s.batch;
  const rowCount = (i: number) => {
    const r = Math.floor(i / W);
    return sum(mask.subarray(r * W, (r + 1) * W));
  };
  const den = s.o.aggMode === "token-mean"
    ? sum(mask)
    : s.o.aggMode === "seq-mean-token-sum-norm"
    ? (s.o.aggNormLength > 0 ? s.o.aggNormLength : W)
    : B;
  const weight = (i: number) =>
    s.o.aggMode === "seq-mean-token-mean"
      ? mask[i] / (Math.max(rowCount(i), 1) * Math.max(den, 1))
      : mask[i] / Math.max(den, 1);
  return { weights: Float64Array.from({ length: s.n }, (_, i) => weight(i)), den };
}

/** k3 to the reference as a dual in ℓ (both clamps). */
function k3(l: Dual, ref: number): Dual {
  const d = clamp(sub(cst(ref), l), -K3_CLAMP.logRatio, K3_CLAMP.logRatio);
  return clamp(sub(sub(exp(d), d), cst(1)), -K3_CLAMP.kl, K3_CLAMP.kl);
}

/**
 * Reference value, gradients, metrics and selections of one registered loss on one scope.
 *
 * @param method A registered method name.
 * @param options Its options (as for `policyLoss`; `statScope` is ignored: the batch is the scope).
 * @param batch The scope's values.
 * @returns Loss, gradients, metrics, selections.
 */
export function lossReference(
  method: string,
  options: LossOptions | undefined,
  batch: LossBatch,
): LossReference {
  const o = resolveLossOptions(method, options);
  const s = scopeOf(o, batch);
  const m = REFERENCES[method](s);
  const policyMask = m.policyMask ? m.select[m.policyMask] : s.valid;
  const pol = aggWeights(s, policyMask);
  const all = aggWeights(s, s.valid);
  const scale = batch.lossScale ?? 1;
  const adv = m.advantage ?? s.adv;
  const gradLogp = new Float64Array(s.n);
  const gradEntropy = new Float64Array(s.n);
  const parts = { policy: 0, kl: 0, entropy: 0 };
  const perToken = { k3: new Float64Array(s.n), h: new Float64Array(s.n) };
  for (let i = 0; i < s.n; i++) {
    if (s.valid[i] === 0) continue;
    const l: Dual = { v: batch.logp[i], d: 1 };
    const tok = m.token(i, l, adv(i));
    const kl = k3(l, batch.refLogp[i]);
    perToken.k3[i] = kl.v;
    perToken.h[i] = batch.entropy[i];
    parts.policy += pol.weights[i] * tok.v;
    parts.kl += all.weights[i] * kl.v;
    parts.entropy += all.weights[i] * batch.entropy[i];
    gradLogp[i] = scale * (pol.weights[i] * tok.d + o.refCoef * all.weights[i] * kl.d);
    gradEntropy[i] = -scale * o.entropyCoef * all.weights[i];
  }
  const loss = scale * (parts.policy - o.entropyCoef * parts.entropy + o.refCoef * parts.kl);
  const mean = (f?: (i: number) => number) => (f ? meanOver(s.valid, f) : 0);
  const metrics: Record<LossMetric, number> = {
    policy_loss: parts.policy,
    kl_loss: parts.kl,
    entropy_loss: parts.entropy,
    ref_kl: mean((i) => perToken.k3[i]),
    entropy_mean: mean((i) => perToken.h[i]),
    ppo_kl: mean(m.ppoKl),
    pg_clipfrac: mean(m.pgClipfrac),
    pg_clipfrac_lower: mean(m.pgClipfracLower),
    frac_entropy_set: 0,
    frac_cov_hi: 0,
    frac_cov_lo: 0,
    frac_zeroed: 0,
    valid_tokens: sum(s.valid),
  };
  for (const [name, mask] of Object.entries(m.select)) {
    metrics[`frac_${name}` as LossMetric] = mean((i) => mask[i]);
  }
  const select: Record<string, Float64Array | number> = { ...m.select, den_all: all.den };
  if (m.policyMask) select.den_policy = pol.den;
  return { loss, gradLogp, gradEntropy, metrics, select };
}
