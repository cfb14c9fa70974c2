/**
 * The policy-loss registry of GRPO and the methods SENT is compared with: one entry per method,
 * each a short pair of functions recorded into an ONNX graph, next to the shared pieces they use
 * (PPO clipping, the k3 reference KL, the entropy term, aggregation modes, token selections).
 *
 * | name | method | per-token policy loss |
 * | --- | --- | --- |
 * | `grpo` | GRPO (DeepSeekMath), verl's clipped surrogate | PPO clip, dual clip |
 * | `entropy_bonus` | w/ En: entropy regularisation | GRPO, `entropyCoef` 0.001 |
 * | `entropy_adv` | w/ Adv (Cheng et al. 2025) | GRPO with A + min(α·H_old, |A|/κ) |
 * | `high_entropy_mask` | w/ Mask (Wang et al. 2025, "80/20") | GRPO on the top-20 % entropy tokens |
 * | `clip_cov` | w/ Clip: Clip-Cov (Cui et al. 2025) | PPO clip, a few covariance-window tokens zeroed |
 * | `kl_cov` | w/ Cov: KL-Cov (Cui et al. 2025) | −A·r, + β·|log r| on the top-covariance tokens |
 * | `high_en` | w/ High_En (SENT's rule on the top-20 % entropy tokens; inferred) | as `sent` |
 * | `sent` | SENT | −A·r, + β-weighted |log r| on covariance extremes of the low-entropy 80 % |
 *
 * Every graph computes, per micro-batch:
 * ```
 * L = loss_scale · ( L_policy − c_H · agg(H) + β_ref · agg(k3) )
 * ```
 * where `L_policy = agg(entry token loss)`, H is the current policy's entropy (with gradient),
 * k3 the clamped KL estimator to the reference policy, and `agg` the aggregation mode (default
 * `token-mean`). `loss_scale` is 1 / (number of micro-batches) in `micro` scope and 1 in `mini`.
 *
 * **Entries.** An entry has two parts: `select` reads values that carry no gradient (current
 * log-prob and entropy, old log-prob, advantages, mask, uniforms) and returns 0/1 token masks;
 * `loss` reads the values with gradient and those masks and returns the per-token loss and its
 * metrics. The shared code adds the aggregation denominators to the selection, so a new method
 * is one new entry (`registerLoss`).
 *
 * **Graph inputs** (float32; `B` rows, `W = T − 1` predicted positions):
 * - `old_logp` [B, W] rollout-policy log-probs; `ref_logp` [B, W] reference-policy log-probs;
 *   `old_entropy` [B, W] rollout-policy entropies (the pre-update scoring pass);
 * - `advantages` [B] one advantage per sequence; `response_mask` [B, W], 1 where the position
 *   predicts a response token (prompt and padding 0: they are never selected and never count);
 * - `loss_scale` [] the factor above;
 * - `clip_cov_uniforms` [B, W] (`clip_cov` in micro scope only): uniforms in [0, 1) from a seeded
 *   stream (`clipCovUniforms`); Clip-Cov zeroes the candidates with the smallest ones, a uniform
 *   draw without replacement;
 * - in `mini` scope, `select.<name>` for every name of `selectionNames()` (masks [B, W], scalars
 *   []) instead of computing them.
 *
 * Values at masked positions are replaced by 0 before use, so they change nothing (not even NaN),
 * and their gradients are 0. The one exception is SENT `v2-literal`, which reproduces a
 * reference-code defect that reads log-probs at padding positions.
 *
 * **Outputs.** `loss`, and every metric of {@link LOSS_METRICS} as a scalar output, computed in
 * the same step (so `buildTrainStep(graph, { params, metrics: LOSS_METRICS })` returns them).
 *
 * **Statistic scope.** `micro` (default): selections, covariance means and denominators are
 * taken over the micro-batch the graph sees, as the reference implementation does. `mini`: over
 * the whole mini-batch, while only one micro-batch's logits exist at a time. The weights do not
 * change within a mini-batch, so the trainer loop is:
 * 1. score every micro-batch of the mini-batch with the current weights (`Policy.score`: the
 *    no-grad pre-pass gives exactly the values the train step will recompute);
 * 2. run `buildSelectionGraph(method, options)` once on the mini-batch's concatenated values
 *    (`miniBatchSelections` pads, concatenates, runs and splits it back per micro-batch);
 * 3. run each micro-batch's train step (built with `statScope: "mini"`) with its
 *    `select.*` feeds and `loss_scale` 1; the summed gradients are those of the mini-batch loss.
 *
 * **Debugging.** `buildDirectLossGraph` takes `logp` and `entropy` as inputs instead of a model and
 * also outputs their gradients and the selections; `evaluateLoss` in `loss_cli.ts` runs it on a
 * host micro-batch (`deno task loss FILE.json`).
 *
 * @example
 * ```ts
 * import { LOSS_METRICS, policyLoss } from "./losses.ts";
 * import { buildLossGraph, tinyPolicyConfig } from "./transformer.ts";
 * import { buildTrainStep } from "./train_step.ts";
 * const config = tinyPolicyConfig(28);
 * const graph = buildLossGraph(config, policyLoss("sent", { variant: "v2" }));
 * const params = graph.inputs.filter((v) => v.name.startsWith("model.")).map((v) => v.name);
 * const step = buildTrainStep(graph, { params, metrics: LOSS_METRICS });
 * step.data; // input_ids, attention_mask, position_ids, old_logp, …, loss_scale
 * ```
 *
 * @module
 */

import { grad } from "./autodiff.ts";
import { GraphBuilder } from "./builder.ts";
import { chosenLogProb, klK3, tokenEntropy } from "./fused.ts";
import { chunkedHead } from "./_chunk_head.ts";
import type { Graph, Shape, Value } from "./ir.ts";
import { counterUniform, type StreamKey } from "./counter_rng.ts";
import { HostTensor, type Program } from "./session.ts";
import type { LossBuilder, LossInputs } from "./transformer.ts";
import { aggDenominator, aggregate } from "./_loss_agg.ts";
import {
  checkOwnOptions,
  LossConfigError,
  type LossOptionName,
  type LossOptions,
  type ResolvedLossOptions,
  resolveOptions,
} from "./_loss_options.ts";
import {
  countOf,
  covariance,
  fractionCount,
  quantileMask,
  rowGathered,
  topkMask,
} from "./_loss_select.ts";

export {
  AGG_MODES,
  type AggMode,
  LossConfigError,
  type LossOptions,
  type ResolvedLossOptions,
  SENT_VARIANTS,
  type SentVariant,
} from "./_loss_options.ts";

// ----- names ---------------------------------------------------------------------------------

/** Graph input names of the policy losses. */
export const LOSS_INPUTS = {
  oldLogp: "old_logp",
  refLogp: "ref_logp",
  oldEntropy: "old_entropy",
  advantages: "advantages",
  responseMask: "response_mask",
  lossScale: "loss_scale",
  uniforms: "clip_cov_uniforms",
} as const;

/** Prefix of the selection inputs (mini scope) and outputs (selection and direct graphs). */
export const SELECT_PREFIX = "select.";

/** The token masks an entry may select. */
export type TokenSelection = "entropy_set" | "cov_hi" | "cov_lo" | "zeroed";

/**
 * Every metric a policy-loss graph outputs, with its definition. Means are over the valid tokens
 * of the micro-batch the graph sees; a metric a method does not define is 0.
 */
export const LOSS_METRIC_DEFINITIONS = {
  policy_loss: "the policy term L_policy as this graph aggregates it (before loss_scale)",
  kl_loss: "the aggregated k3 KL to the reference policy (before refCoef)",
  entropy_loss: "the aggregated current-policy entropy (before entropyCoef)",
  ref_kl: "token mean of the k3 KL to the reference policy",
  entropy_mean: "token mean of the current-policy entropy (nats)",
  ppo_kl: "token mean of ℓ_old − ℓ (clamped log-ratio for PPO-clip methods); of |ℓ − ℓ_old| for " +
    "kl_cov, high_en and sent",
  pg_clipfrac: "fraction of valid tokens whose clipped surrogate is the larger one; for " +
    "clip_cov the fraction of zeroed tokens; 0 for the unclipped methods",
  pg_clipfrac_lower: "fraction of valid tokens with A < 0 whose loss the dual clip caps",
  frac_entropy_set: "fraction of valid tokens in the entropy set (sent/high_en set, 80/20 mask)",
  frac_cov_hi: "fraction of valid tokens in the top-covariance set (kl_cov, sent, high_en)",
  frac_cov_lo: "fraction of valid tokens in the bottom-covariance set (sent, high_en)",
  frac_zeroed: "fraction of valid tokens whose loss Clip-Cov zeroed",
  valid_tokens: "number of valid tokens of the micro-batch",
} as const;

/** A metric name. */
export type LossMetric = keyof typeof LOSS_METRIC_DEFINITIONS;

/** Names of the metric outputs of every policy-loss graph. */
export const LOSS_METRICS = Object.keys(LOSS_METRIC_DEFINITIONS) as readonly LossMetric[];

const SELECTION_METRICS: Readonly<Record<TokenSelection, LossMetric>> = {
  entropy_set: "frac_entropy_set",
  cov_hi: "frac_cov_hi",
  cov_lo: "frac_cov_lo",
  zeroed: "frac_zeroed",
};

// ----- entries -------------------------------------------------------------------------------

/** What `select` reads; [B, W] float32 unless noted, none with gradient, masked positions 0. */
export interface SelectInputs {
  readonly b: GraphBuilder;
  readonly options: ResolvedLossOptions;
  /** 0/1 response mask. */
  readonly mask: Value;
  /** [B, 1] advantages. */
  readonly advantages: Value;
  /** Current-policy log-probs. */
  readonly logp: Value;
  /** Current-policy log-probs as computed, masked positions included (`v2-literal` only). */
  readonly rawLogp: Value;
  /** Current-policy entropies. */
  readonly entropy: Value;
  /** Rollout-policy log-probs. */
  readonly oldLogp: Value;
  /** Uniforms in [0, 1) (entries with `uniforms: true`). */
  readonly uniforms?: Value;
}

/** What `loss` reads; [B, W] float32 unless noted, masked positions 0. */
export interface TermInputs {
  readonly b: GraphBuilder;
  readonly options: ResolvedLossOptions;
  readonly mask: Value;
  /** [B, 1] advantages. */
  readonly advantages: Value;
  /** Current-policy log-probs, with gradient. */
  readonly logp: Value;
  readonly oldLogp: Value;
  /** Rollout-policy entropies (no gradient). */
  readonly oldEntropy: Value;
  /** The entry's selections (masks [B, W]). */
  readonly select: Readonly<Record<string, Value>>;
}

/** What `loss` returns: per-token values [B, W]; metrics are averaged over valid tokens. */
export interface TermOutput {
  /** Per-token policy loss. */
  readonly tokens: Value;
  /** Per-token value averaged into `ppo_kl`. */
  readonly ppoKl?: Value;
  /** Per-token 0/1 (float32) averaged into `pg_clipfrac`. */
  readonly pgClipfrac?: Value;
  /** Per-token 0/1 (float32) averaged into `pg_clipfrac_lower`. */
  readonly pgClipfracLower?: Value;
}

/** One registered policy loss. */
export interface LossEntry {
  /** Registry name: lower case, digits and underscores. */
  readonly name: string;
  /** One line: the method and its source. */
  readonly summary: string;
  /** The options it takes besides the common ones, with its defaults. */
  readonly options: Readonly<Partial<Record<LossOptionName, number | string>>>;
  /** Whether `select` reads uniforms (`clip_cov_uniforms`). */
  readonly uniforms?: boolean;
  /** The token masks `select` returns, for these options. */
  selections(options: ResolvedLossOptions): readonly TokenSelection[];
  /** The mask the policy term is aggregated over (default: the response mask). */
  policyMask?(options: ResolvedLossOptions): TokenSelection | undefined;
  /** Record the selections (no gradient). */
  select(inputs: SelectInputs): Partial<Record<TokenSelection, Value>>;
  /** Record the per-token loss and its metrics. */
  loss(inputs: TermInputs): TermOutput;
}

const registry = new Map<string, LossEntry>();

/** Every registered loss by name (read-only view of the registry). */
export const LOSSES: ReadonlyMap<string, LossEntry> = registry;

/**
 * Add a policy loss to the registry.
 *
 * @param entry The entry.
 * @throws LossConfigError for a duplicate or malformed name, or an unknown option or
 *   out-of-range default among the entry's own options.
 */
export function registerLoss(entry: LossEntry): void {
  if (!/^[a-z][a-z0-9_]*$/.test(entry.name)) {
    throw new LossConfigError(
      "name",
      `registerLoss(): name ${JSON.stringify(entry.name)} must be lower case letters, digits ` +
        "and underscores, starting with a letter",
    );
  }
  checkOwnOptions(entry.name, entry.options);
  if (registry.has(entry.name)) {
    throw new LossConfigError(
      "name",
      `registerLoss(): a loss named ${entry.name} is already registered`,
    );
  }
  registry.set(entry.name, entry);
}

/**
 * Look up a registered loss.
 *
 * @param name The method name (case-sensitive).
 * @returns Its entry.
 * @throws LossConfigError listing the known names (and the right case, if only that differs).
 */
export function lossEntry(name: string): LossEntry {
  const entry = registry.get(name);
  if (entry) return entry;
  const near = [...registry.keys()].find((k) => k.toLowerCase() === String(name).toLowerCase());
  throw new LossConfigError(
    "method",
    `unknown loss method ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ""}; ` +
      `known: ${[...registry.keys()].join(", ")}`,
  );
}

/**
 * A method's options with its defaults filled in, checked.
 *
 * @param method The method name.
 * @param options The user's options (untyped input is checked too).
 * @returns Every option.
 * @throws LossConfigError naming an unknown method, or an unknown or out-of-range option.
 */
export function resolveLossOptions(method: string, options?: unknown): ResolvedLossOptions {
  return resolveOptions(method, lossEntry(method).options, options);
}

// ----- shared pieces -------------------------------------------------------------------------

const PPO_OPTIONS = { clipLow: 0.2, clipHigh: 0.2, dualClipC: 3 } as const;

/** Clamp of the log-ratio before exp in the PPO surrogate (verl's `compute_policy_loss`). */
const LOG_RATIO_CLAMP = 20;

/**
 * verl's clipped surrogate with dual clip, per token (GRPO; verl `compute_policy_loss`):
 * ```
 * d  = clamp(ℓ − ℓ_old, −20, 20),  r = exp(d)
 * L1 = −A·r,  L2 = −A·clip(r, 1 − ε_low, 1 + ε_high),  Lc = max(L1, L2)
 * L  = Lc                  if A ≥ 0
 * L  = min(Lc, −A·c)       if A < 0     (dual clip)
 * ```
 * Metrics: clipfrac = [L2 > L1], lower = [A < 0 and Lc > −A·c], ppo_kl = −d.
 */
function ppoClipTerm(b: GraphBuilder, a: Value, logRatio: Value, o: ResolvedLossOptions) {
  const d = b.clip(logRatio, b.scalar(-LOG_RATIO_CLAMP), b.scalar(LOG_RATIO_CLAMP));
  const r = b.exp(d);
  const negA = b.neg(a);
  const l1 = b.mul(negA, r);
  const l2 = b.mul(negA, b.clip(r, b.scalar(1 - o.clipLow), b.scalar(1 + o.clipHigh)));
  const lc = b.max(l1, l2);
  const l3 = b.mul(negA, b.scalar(o.dualClipC));
  const negative = b.less(a, b.scalar(0));
  return {
    tokens: b.where(negative, b.min(l3, lc), lc),
    ppoKl: b.neg(d),
    pgClipfrac: b.cast(b.greater(l2, l1), "float32"),
    pgClipfracLower: b.cast(b.and(b.greater(lc, l3), negative), "float32"),
  };
}

/** The unclipped importance-weighted term −A·r, r = exp(ℓ − ℓ_old), and |ℓ − ℓ_old|. */
function importanceTerm(t: TermInputs): { policy: Value; absLogRatio: Value } {
  const { b } = t;
  const logRatio = b.sub(t.logp, t.oldLogp);
  return { policy: b.mul(b.neg(t.advantages), b.exp(logRatio)), absLogRatio: b.abs(logRatio) };
}

const scaled = (b: GraphBuilder, x: Value, c: number) => b.mul(x, b.scalar(c));

// ----- the entries ---------------------------------------------------------------------------

/** GRPO (DeepSeekMath; verl's `compute_policy_loss`): the clipped surrogate on every token. */
const grpo: LossEntry = {
  name: "grpo",
  summary: "GRPO: PPO-clipped surrogate with dual clip (Shao et al. 2024; verl)",
  options: PPO_OPTIONS,
  selections: () => [],
  select: () => ({}),
  loss: (t) => ppoClipTerm(t.b, t.advantages, t.b.sub(t.logp, t.oldLogp), t.options),
};

/** w/ En: GRPO minus c_H times the aggregated entropy (maximum-entropy regularisation). */
const entropyBonus: LossEntry = {
  ...grpo,
  name: "entropy_bonus",
  summary: "w/ En: GRPO − c_H·agg(H), c_H = 0.001 (entropy regularisation; verl entropy_coeff)",
  options: { ...PPO_OPTIONS, entropyCoef: 0.001 },
};

/**
 * w/ Adv (Cheng et al. 2025, "Reasoning with Exploration: An Entropy Perspective"): GRPO with
 * `A' = A + min(α·H_old, |A|/κ)`; H_old is the rollout policy's entropy (detached), and κ > 1
 * keeps the bonus below |A| so the sign of A never flips (A = 0 gets no bonus).
 */
const entropyAdv: LossEntry = {
  ...grpo,
  name: "entropy_adv",
  summary: "w/ Adv: GRPO with A + min(α·H_old, |A|/κ) (Cheng et al. 2025)",
  options: { ...PPO_OPTIONS, entropyAlpha: 0.4, kappa: 2 },
  loss: (t) => {
    const { b, options: o } = t;
    const bonus = b.min(
      scaled(b, t.oldEntropy, o.entropyAlpha),
      scaled(b, b.abs(t.advantages), 1 / o.kappa),
    );
    return ppoClipTerm(b, b.add(t.advantages, bonus), b.sub(t.logp, t.oldLogp), o);
  },
};

/**
 * w/ Mask (Wang et al. 2025, "Beyond the 80/20 Rule"): the clipped surrogate only on tokens
 * with `H ≥ τ`, τ the (1 − entropyTopRatio) quantile of the valid entropies (linear
 * interpolation; ties at τ all kept); divided by all valid tokens (`normalizer: all`, the
 * paper's formula) or by the selected ones. The KL and entropy terms keep the full mask.
 */
const highEntropyMask: LossEntry = {
  name: "high_entropy_mask",
  summary: "w/ Mask: GRPO on tokens with H ≥ the 80th entropy percentile (Wang et al. 2025)",
  options: { ...PPO_OPTIONS, entropyTopRatio: 0.2, normalizer: "all" },
  selections: () => ["entropy_set"],
  policyMask: (o) => (o.normalizer === "selected" ? "entropy_set" : undefined),
  select: (s) => ({
    entropy_set: quantileMask(s.b, s.entropy, s.mask, 1 - s.options.entropyTopRatio),
  }),
  loss: (t) => {
    const term = ppoClipTerm(t.b, t.advantages, t.b.sub(t.logp, t.oldLogp), t.options);
    return { ...term, tokens: t.b.mul(term.tokens, t.select.entropy_set) };
  },
};

/**
 * w/ Clip: Clip-Cov (Cui et al. 2025; verl `compute_policy_loss_clip_cov`):
 * ```
 * cov = (A − Ā)(ℓ − ℓ̄)   means over valid tokens, no gradient
 * candidates = valid tokens with lb < cov < ub whose surrogate is not already clipped (L2 ≤ L1)
 * n = max(floor(clipCovRatio · N_valid), 1) candidates drawn uniformly without replacement
 * L = max(L1, L2) · (1 − zeroed)   (log-ratio not clamped, no dual clip)
 * ```
 * The draw takes the n candidates with the smallest of the fed uniforms.
 */
const clipCov: LossEntry = {
  name: "clip_cov",
  summary: "w/ Clip: Clip-Cov, zero the loss of a random few covariance-window tokens (Cui 2025)",
  options: { clipLow: 0.2, clipHigh: 0.2, clipCovRatio: 0.0002, clipCovLb: 1, clipCovUb: 5 },
  uniforms: true,
  selections: () => ["zeroed"],
  select: (s) => {
    const { b, options: o } = s;
    const negA = b.neg(s.advantages);
    const r = b.exp(b.sub(s.logp, s.oldLogp));
    const clipped = b.greater(
      b.mul(negA, b.clip(r, b.scalar(1 - o.clipLow), b.scalar(1 + o.clipHigh))),
      b.mul(negA, r),
    );
    const cov = covariance(b, s.advantages, s.logp, s.mask);
    const window = b.and(
      b.greater(cov, b.scalar(o.clipCovLb, "float64")),
      b.less(cov, b.scalar(o.clipCovUb, "float64")),
    );
    const candidates = b.mul(s.mask, b.cast(b.and(window, b.not(clipped)), "float32"));
    const n = fractionCount(b, countOf(b, s.mask), o.clipCovRatio);
    return { zeroed: topkMask(b, s.uniforms!, candidates, n.k, false) };
  },
  loss: (t) => {
    const { b, options: o } = t;
    const logRatio = b.sub(t.logp, t.oldLogp);
    const r = b.exp(logRatio);
    const negA = b.neg(t.advantages);
    const l1 = b.mul(negA, r);
    const l2 = b.mul(negA, b.clip(r, b.scalar(1 - o.clipLow), b.scalar(1 + o.clipHigh)));
    const zeroed = t.select.zeroed;
    return {
      tokens: b.mul(b.max(l1, l2), b.sub(b.scalar(1), zeroed)),
      ppoKl: b.neg(logRatio),
      pgClipfrac: zeroed,
    };
  },
};

/**
 * w/ Cov: KL-Cov (Cui et al. 2025; verl `compute_policy_loss_kl_cov`), no ratio clipping:
 * ```
 * cov = (A − Ā)(ℓ − ℓ̄) over valid tokens;  S = the max(floor(klCovRatio · N_valid), 1) largest
 * L = −A·r + β·|ℓ − ℓ_old|·[S]       (β = ppoKlCoef)
 * ```
 */
const klCov: LossEntry = {
  name: "kl_cov",
  summary: "w/ Cov: KL-Cov, −A·r + β·|log r| on the top-covariance tokens (Cui et al. 2025)",
  options: { klCovRatio: 0.0002, ppoKlCoef: 0.1 },
  selections: () => ["cov_hi"],
  select: (s) => {
    const { b } = s;
    const n = fractionCount(b, countOf(b, s.mask), s.options.klCovRatio);
    const cov = covariance(b, s.advantages, s.logp, s.mask);
    return { cov_hi: topkMask(b, cov, s.mask, n.k, true) };
  },
  loss: (t) => {
    const { b, options: o } = t;
    const { policy, absLogRatio } = importanceTerm(t);
    const penalty = b.mul(scaled(b, t.select.cov_hi, o.ppoKlCoef), absLogRatio);
    return { tokens: b.add(policy, penalty), ppoKl: absLogRatio };
  },
};

/**
 * The per-token |log r| weight of each SENT variant, from its selections (β = ppoKlCoef):
 * - `v2`, `v2-literal`: β·loMult on the bottom-covariance tokens, else β·hiMult on the
 *   top-covariance ones (the bottom set is written second in the reference, so it wins);
 * - `v1`: β on every token of the entropy set;
 * - `paper`: β on the entropy set plus β·hiMult on the top-covariance tokens.
 */
const SENT_PENALTY: Readonly<
  Record<
    ResolvedLossOptions["variant"],
    (b: GraphBuilder, s: Readonly<Record<string, Value>>, o: ResolvedLossOptions) => Value
  >
> = {
  "v2": (b, s, o) => sentV2Penalty(b, s, o),
  "v2-literal": (b, s, o) => sentV2Penalty(b, s, o),
  "v1": (b, s, o) => scaled(b, s.entropy_set, o.ppoKlCoef),
  "paper": (b, s, o) =>
    b.add(scaled(b, s.entropy_set, o.ppoKlCoef), scaled(b, s.cov_hi, o.ppoKlCoef * o.hiMult)),
};

function sentV2Penalty(
  b: GraphBuilder,
  s: Readonly<Record<string, Value>>,
  o: ResolvedLossOptions,
) {
  const lo = s.cov_lo;
  const notLo = b.sub(b.scalar(1), lo);
  return b.add(
    scaled(b, lo, o.ppoKlCoef * o.loMult),
    b.mul(notLo, scaled(b, s.cov_hi, o.ppoKlCoef * o.hiMult)),
  );
}

/**
 * SENT (`low_entropy_kl_cov_v2` of the reference implementation), per micro-batch:
 * ```
 * k_set = max(floor(fraction · N_valid), 1);  E = the k_set valid tokens of lowest entropy
 *         (highest for selection = high)
 * c = (A − Ā_E)(ℓ − ℓ̄_E) on E (means over E, no gradient)
 * k = max(floor(klCovRatio · k_set), 1);  S_hi, S_lo = the k tokens of E with largest, smallest c
 * L = −A·r + w·|ℓ − ℓ_old|   w per variant (see SENT_PENALTY);  no ratio clipping at all
 * ```
 * `v2-literal` takes c from the row-gathered values the reference code reads by mistake (see
 * `rowGathered`); `v1` has no covariance step and aggregates over E only.
 */
const sent: LossEntry = {
  name: "sent",
  summary: "SENT: −A·r + β-weighted |log r| on covariance extremes of the low-entropy 80 %",
  options: {
    variant: "v2",
    klCovRatio: 0.0002,
    ppoKlCoef: 0.1,
    selection: "low",
    fraction: 0.8,
    hiMult: 2,
    loMult: 0.5,
  },
  selections: (o) =>
    o.variant === "v1"
      ? ["entropy_set"]
      : o.variant === "paper"
      ? ["entropy_set", "cov_hi"]
      : ["entropy_set", "cov_hi", "cov_lo"],
  policyMask: (o) => (o.variant === "v1" ? "entropy_set" : undefined),
  select: (s) => {
    const { b, options: o } = s;
    const kSet = fractionCount(b, countOf(b, s.mask), o.fraction);
    const set = topkMask(b, s.entropy, s.mask, kSet.k, o.selection === "high");
    if (o.variant === "v1") return { entropy_set: set };
    const values = o.variant === "v2-literal"
      ? rowGathered(b, b.mul(s.advantages, s.mask), s.rawLogp, s.mask)
      : { adv: s.advantages, logp: s.logp };
    const cov = covariance(b, values.adv, values.logp, set);
    const k = fractionCount(b, kSet.k64, o.klCovRatio);
    const cov_hi = topkMask(b, cov, set, k.k, true);
    if (o.variant === "paper") return { entropy_set: set, cov_hi };
    return { entropy_set: set, cov_hi, cov_lo: topkMask(b, cov, set, k.k, false) };
  },
  loss: (t) => {
    const { b, options: o } = t;
    const { policy, absLogRatio } = importanceTerm(t);
    const weight = SENT_PENALTY[o.variant](b, t.select, o);
    return { tokens: b.add(policy, b.mul(weight, absLogRatio)), ppoKl: absLogRatio };
  },
};

/** w/ High_En (inferred): SENT's rule on the top-20 % entropy tokens instead of the bottom 80 %. */
const highEn: LossEntry = {
  ...sent,
  name: "high_en",
  summary: "w/ High_En: SENT's covariance rule inside the top-20 % entropy tokens (inferred)",
  options: { ...sent.options, selection: "high", fraction: 0.2 },
};

for (
  const entry of [grpo, entropyBonus, entropyAdv, highEntropyMask, clipCov, klCov, highEn, sent]
) {
  registerLoss(entry);
}

// ----- recording a loss ----------------------------------------------------------------------

/** The values one policy-loss computation reads (float32, [B, W] unless noted). */
export interface PolicyValues {
  /** Current-policy log-probs, with gradient. */
  readonly logp: Value;
  /** Current-policy entropies, with gradient. */
  readonly entropy: Value;
  readonly oldLogp: Value;
  readonly refLogp: Value;
  readonly oldEntropy: Value;
  /** [B] one advantage per sequence. */
  readonly advantages: Value;
  /** 0/1 response mask. */
  readonly mask: Value;
  /** [] factor of the whole loss. */
  readonly lossScale: Value;
  /** Uniforms for entries that draw (micro scope). */
  readonly uniforms?: Value;
  /** Precomputed selections (mini scope): masks [B, W] and `den_all` / `den_policy` scalars. */
  readonly select?: Readonly<Record<string, Value>>;
}

/** A recorded policy loss: the scalar loss, its metrics and the selections it used. */
export interface RecordedLoss {
  readonly loss: Value;
  readonly metrics: Readonly<Record<LossMetric, Value>>;
  readonly select: Readonly<Record<string, Value>>;
}

/** Names of a method's selection values: token masks [B, W], then scalars []. */
export interface SelectionNames {
  readonly tokens: readonly string[];
  readonly scalars: readonly string[];
}

/**
 * The selection values of a method under these options (mini scope feeds them as
 * `select.<name>`): its token masks, then the aggregation denominators `den_all` (response mask)
 * and, when the policy term uses another mask, `den_policy`.
 *
 * @param method The method name.
 * @param options Its options.
 * @returns Token and scalar names, without the `select.` prefix.
 */
export function selectionNames(method: string, options?: LossOptions): SelectionNames {
  const entry = lossEntry(method);
  const o = resolveOptions(method, entry.options, options);
  return namesOf(entry, o);
}

function namesOf(entry: LossEntry, o: ResolvedLossOptions): SelectionNames {
  return {
    tokens: entry.selections(o),
    scalars: entry.policyMask?.(o) ? ["den_all", "den_policy"] : ["den_all"],
  };
}

/** Masked positions read as 0 (so nothing there, not even NaN, reaches the loss). */
function cleaned(b: GraphBuilder, mask: Value) {
  const on = b.greater(mask, b.scalar(0));
  return (x: Value) => b.where(on, x, b.scalar(0));
}

/** Selections and denominators over the given (scope's) values. */
function selectAll(
  entry: LossEntry,
  o: ResolvedLossOptions,
  s: SelectInputs,
): Record<string, Value> {
  const picked: Record<string, Value> = { ...entry.select(s) };
  const names = namesOf(entry, o);
  for (const name of names.tokens) {
    if (!picked[name]) throw new Error(`loss ${entry.name}: select() did not return ${name}`);
  }
  picked.den_all = aggDenominator(s.b, s.mask, o);
  const policyMask = entry.policyMask?.(o);
  if (policyMask) picked.den_policy = aggDenominator(s.b, picked[policyMask], o);
  return picked;
}

/** The selection inputs of one scope, from raw values. */
function scopeInputs(
  b: GraphBuilder,
  o: ResolvedLossOptions,
  v: Pick<PolicyValues, "logp" | "entropy" | "oldLogp" | "advantages" | "mask" | "uniforms">,
): SelectInputs {
  const clean = cleaned(b, v.mask);
  return {
    b,
    options: o,
    mask: v.mask,
    advantages: b.unsqueeze(v.advantages, [1]),
    logp: b.stopGradient(clean(v.logp)),
    rawLogp: b.stopGradient(v.logp),
    entropy: b.stopGradient(clean(v.entropy)),
    oldLogp: clean(v.oldLogp),
    uniforms: v.uniforms,
  };
}

/**
 * Record one policy loss into a graph: selections (or the fed ones), the entry's token loss,
 * aggregation, the entropy and reference-KL terms, `loss_scale`, and every metric.
 *
 * @param b Builder to record into.
 * @param method The method name.
 * @param options Its options.
 * @param values The inputs (see {@link PolicyValues}).
 * @returns The loss, the metric values and the selections.
 */
export function recordPolicyLoss(
  b: GraphBuilder,
  method: string,
  options: LossOptions | undefined,
  values: PolicyValues,
): RecordedLoss {
  const entry = lossEntry(method);
  return record(b, entry, resolveOptions(method, entry.options, options), values);
}

function record(
  b: GraphBuilder,
  entry: LossEntry,
  o: ResolvedLossOptions,
  values: PolicyValues,
): RecordedLoss {
  const { mask } = values;
  const clean = cleaned(b, mask);
  const logp = clean(values.logp);
  const entropy = clean(values.entropy);
  const refLogp = clean(values.refLogp);
  const s = scopeInputs(b, o, values);
  const select = values.select ?? selectAll(entry, o, s);
  const term = entry.loss({
    b,
    options: o,
    mask,
    advantages: s.advantages,
    logp,
    oldLogp: s.oldLogp,
    oldEntropy: b.stopGradient(clean(values.oldEntropy)),
    select,
  });

  // L = loss_scale · (L_policy − c_H·agg(H) + β_ref·agg(k3))
  const policyMask = entry.policyMask?.(o);
  const policy = policyMask
    ? aggregate(b, term.tokens, select[policyMask], select.den_policy, o)
    : aggregate(b, term.tokens, mask, select.den_all, o);
  const entropyPart = aggregate(b, entropy, mask, select.den_all, o);
  const k3 = klK3(b, logp, refLogp);
  const klPart = aggregate(b, k3, mask, select.den_all, o);
  let total = policy;
  if (o.entropyCoef !== 0) total = b.sub(total, scaled(b, entropyPart, o.entropyCoef));
  if (o.refCoef !== 0) total = b.add(total, scaled(b, klPart, o.refCoef));
  const loss = b.mul(total, values.lossScale);

  const valid = countOf(b, mask);
  const mean = (x: Value | undefined) =>
    x ? b.div(b.reduceSum(b.mul(x, mask), [0, 1], false), b.max(valid, b.scalar(1))) : b.scalar(0);
  const metrics: Record<LossMetric, Value> = {
    policy_loss: policy,
    kl_loss: klPart,
    entropy_loss: entropyPart,
    ref_kl: mean(k3),
    entropy_mean: mean(entropy),
    ppo_kl: mean(term.ppoKl),
    pg_clipfrac: mean(term.pgClipfrac),
    pg_clipfrac_lower: mean(term.pgClipfracLower),
    frac_entropy_set: mean(undefined),
    frac_cov_hi: mean(undefined),
    frac_cov_lo: mean(undefined),
    frac_zeroed: mean(undefined),
    valid_tokens: valid,
  };
  for (const name of entry.selections(o)) metrics[SELECTION_METRICS[name]] = mean(select[name]);
  return { loss, metrics, select };
}

// ----- graphs --------------------------------------------------------------------------------

/** Shape of the per-position inputs of the model-backed loss graph. */
const MODEL_DIMS: Shape = ["batch_size", "sequence_length - 1"];
/** Shape of the per-position inputs of the direct and selection graphs. */
const DIRECT_DIMS: Shape = ["batch", "positions"];

/** Declare the standard inputs, and the selection inputs in mini scope. */
function declareInputs(
  b: GraphBuilder,
  entry: LossEntry,
  o: ResolvedLossOptions,
  dims: Shape,
): Omit<PolicyValues, "logp" | "entropy"> {
  const perToken = (name: string) => b.input(name, "float32", dims);
  const declared = {
    oldLogp: perToken(LOSS_INPUTS.oldLogp),
    refLogp: perToken(LOSS_INPUTS.refLogp),
    oldEntropy: perToken(LOSS_INPUTS.oldEntropy),
    advantages: b.input(LOSS_INPUTS.advantages, "float32", [dims[0]]),
    mask: perToken(LOSS_INPUTS.responseMask),
    lossScale: b.input(LOSS_INPUTS.lossScale, "float32", []),
  };
  if (o.statScope === "micro") {
    return { ...declared, uniforms: entry.uniforms ? perToken(LOSS_INPUTS.uniforms) : undefined };
  }
  const names = namesOf(entry, o);
  const select: Record<string, Value> = {};
  for (const n of names.tokens) select[n] = perToken(SELECT_PREFIX + n);
  for (const n of names.scalars) select[n] = b.input(SELECT_PREFIX + n, "float32", []);
  return { ...declared, select };
}

function outputMetrics(b: GraphBuilder, recorded: RecordedLoss): void {
  for (const name of LOSS_METRICS) b.output(recorded.metrics[name], name);
}

/**
 * A policy loss for `buildLossGraph` / `policyTrainStep`: log-probs and entropies of the sampled
 * tokens from the model's logits (divided by `temperature`), then {@link recordPolicyLoss}. When
 * the graph asks for a chunked head (large vocabularies), the values come from
 * `chunkedHead` (kernels/_chunk_head.ts) and the loss gets its gradient through it.
 * Declares the inputs listed in the module doc and outputs every metric of {@link LOSS_METRICS}.
 *
 * @param method A registered method name.
 * @param options Its options (checked now).
 * @returns The loss builder.
 * @throws LossConfigError for an unknown method or a bad option.
 */
export function policyLoss(method: string, options?: LossOptions): LossBuilder {
  const entry = lossEntry(method);
  const o = resolveOptions(method, entry.options, options);
  return (model: LossInputs) => {
    const { b } = model;
    const t = { temperature: o.temperature };
    // At a large vocabulary the head runs in chunks of positions (kernels/_chunk_head.ts).
    const head = model.chunking
      ? chunkedHead(b, { hidden: model.hidden, weight: model.headWeight, targets: model.targets }, {
        ...t,
        chunking: model.chunking,
      })
      : undefined;
    const logp = head?.logp ?? chosenLogProb(b, model.logits, model.targets, t); // [B, T−1]
    const entropy = head?.entropy ?? tokenEntropy(b, model.logits, t); //          [B, T−1]
    const inputs = declareInputs(b, entry, o, MODEL_DIMS);
    const recorded = record(b, entry, o, { ...inputs, logp, entropy });
    outputMetrics(b, recorded);
    return head ? head.finish(recorded.loss) : recorded.loss;
  };
}

/**
 * The loss on per-token values given directly: inputs `logp` and `entropy` [batch, positions]
 * (with gradient) and the standard inputs; outputs `loss`, every metric, `grad.logp` and
 * `grad.entropy` (dloss/dvalue), and in micro scope the selections `select.<name>`.
 *
 * @param method A registered method name.
 * @param options Its options.
 * @returns The graph.
 */
export function buildDirectLossGraph(method: string, options?: LossOptions): Graph {
  const entry = lossEntry(method);
  const o = resolveOptions(method, entry.options, options);
  const b = new GraphBuilder(`${method}_loss`);
  const logp = b.input("logp", "float32", DIRECT_DIMS);
  const entropy = b.input("entropy", "float32", DIRECT_DIMS);
  const inputs = declareInputs(b, entry, o, DIRECT_DIMS);
  const recorded = record(b, entry, o, { ...inputs, logp, entropy });
  b.output(recorded.loss, "loss");
  outputMetrics(b, recorded);
  if (o.statScope === "micro") {
    const names = namesOf(entry, o);
    for (const n of [...names.tokens, ...names.scalars]) {
      b.output(recorded.select[n], SELECT_PREFIX + n);
    }
  }
  return grad(b.build(), "loss", ["logp", "entropy"]);
}

/**
 * The selection graph of `mini` scope: the method's selections and denominators over a whole
 * mini-batch. Inputs (float32): `logp`, `entropy` (current policy, from the scoring pre-pass),
 * `old_logp`, `response_mask` [batch, positions], `advantages` [batch], and `clip_cov_uniforms`
 * for `clip_cov`. Outputs `select.<name>` for every name of {@link selectionNames}.
 *
 * @param method A registered method name.
 * @param options Its options.
 * @returns The graph.
 */
export function buildSelectionGraph(method: string, options?: LossOptions): Graph {
  const entry = lossEntry(method);
  const o = resolveOptions(method, entry.options, options);
  const b = new GraphBuilder(`${method}_selection`);
  const perToken = (name: string) => b.input(name, "float32", DIRECT_DIMS);
  const logp = perToken("logp");
  const entropy = perToken("entropy");
  const oldLogp = perToken(LOSS_INPUTS.oldLogp);
  const advantages = b.input(LOSS_INPUTS.advantages, "float32", [DIRECT_DIMS[0]]);
  const mask = perToken(LOSS_INPUTS.responseMask);
  const uniforms = entry.uniforms ? perToken(LOSS_INPUTS.uniforms) : undefined;
  const s = scopeInputs(b, o, { logp, entropy, oldLogp, advantages, mask, uniforms });
  const picked = selectAll(entry, o, s);
  const names = namesOf(entry, o);
  for (const n of [...names.tokens, ...names.scalars]) b.output(picked[n], SELECT_PREFIX + n);
  return b.build();
}

// ----- host helpers --------------------------------------------------------------------------

/**
 * Uniforms in [0, 1) for Clip-Cov's draw: element i of a [batch, positions] micro-batch is
 * number `offset + i` of the stream, so the same seed gives the same draw.
 *
 * @param key A seeded stream (e.g. `streamKey(seed, "clip_cov", step, micro)`).
 * @param size Number of elements (batch · positions).
 * @param offset First counter of the stream (default 0).
 * @returns The uniforms.
 */
export function clipCovUniforms(key: StreamKey, size: number, offset = 0): Float32Array {
  // Float32 rounding can turn a uniform just below 1 into 1; keep them below 1.
  return Float32Array.from(
    { length: size },
    (_, i) => Math.min(counterUniform(key, offset + i), 0.99999994),
  );
}

/** One micro-batch's values for the mini-scope selection (row-major [batch, width] arrays). */
export interface MicroBatchValues {
  readonly batch: number;
  /** Predicted positions W (= sequence length − 1). */
  readonly width: number;
  /** Current-policy log-probs and entropies (the scoring pre-pass). */
  readonly logp: Float32Array;
  readonly entropy: Float32Array;
  readonly oldLogp: Float32Array;
  /** [batch]. */
  readonly advantages: Float32Array;
  readonly responseMask: Float32Array;
  /** Clip-Cov only. */
  readonly uniforms?: Float32Array;
}

/**
 * Run a compiled {@link buildSelectionGraph} on a mini-batch given as micro-batches: pads them
 * to one width (mask 0), concatenates their rows, runs, and splits the selections back.
 *
 * @param selection The compiled selection graph.
 * @param micro The mini-batch's micro-batches, in order.
 * @returns Per micro-batch, the `select.*` feeds of its train step.
 */
export async function miniBatchSelections(
  selection: Program,
  micro: readonly MicroBatchValues[],
): Promise<Record<string, HostTensor>[]> {
  if (micro.length === 0) {
    throw new Error("miniBatchSelections(): no micro-batches; expected at least one");
  }
  const width = Math.max(...micro.map((m) => m.width));
  const rows = micro.reduce((n, m) => n + m.batch, 0);
  const stack = (pick: (m: MicroBatchValues) => Float32Array | undefined) => {
    const out = new Float32Array(rows * width);
    let row = 0;
    for (const m of micro) {
      const data = pick(m) ?? new Float32Array(m.batch * m.width);
      for (let r = 0; r < m.batch; r++, row++) {
        out.set(data.subarray(r * m.width, (r + 1) * m.width), row * width);
      }
    }
    return new HostTensor("float32", [rows, width], out);
  };
  const feeds: Record<string, HostTensor> = {
    logp: stack((m) => m.logp),
    entropy: stack((m) => m.entropy),
    [LOSS_INPUTS.oldLogp]: stack((m) => m.oldLogp),
    [LOSS_INPUTS.responseMask]: stack((m) => m.responseMask),
    [LOSS_INPUTS.uniforms]: stack((m) => m.uniforms),
    [LOSS_INPUTS.advantages]: new HostTensor(
      "float32",
      [rows],
      Float32Array.from(micro.flatMap((m) => [...m.advantages])),
    ),
  };
  const wanted = Object.fromEntries(
    selection.inputNames.map((n) => [n, feeds[n]]),
  );
  const out = await selection.run(wanted);
  const result: Record<string, HostTensor>[] = micro.map(() => ({}));
  for (const name of selection.outputNames) {
    const t = out.host(name);
    let row = 0;
    micro.forEach((m, i) => {
      if (t.dims.length === 0) result[i][name] = t;
      else {
        const data = new Float32Array(m.batch * m.width);
        for (let r = 0; r < m.batch; r++, row++) {
          data.set(
            (t.data as Float32Array).subarray(row * width, row * width + m.width),
            r * m.width,
          );
        }
        result[i][name] = new HostTensor("float32", [m.batch, m.width], data);
      }
    });
  }
  return result;
}
