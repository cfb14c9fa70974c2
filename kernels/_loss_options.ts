/**
 * Options of the policy losses: one table of every option (what it means, its default, its
 * range), and the check that turns a user's options for one method into a complete, validated
 * set. Names follow the preset keys without their prefix (`loss.clipLow` → `clipLow`,
 * `sent.variant` → `variant`, `kl.refCoef` → `refCoef`).
 *
 * A method accepts the common options (entropy and reference-KL coefficients, aggregation,
 * statistic scope, temperature) plus the ones its registry entry declares; any other name, a
 * wrong-case name, a value of the wrong type or out of range is a `LossConfigError` naming the
 * option, the value and what was expected.
 *
 * @module
 */

/** SENT's token-rule variants (see the `sent` entry of `losses.ts`). */
export const SENT_VARIANTS = ["v2", "v2-literal", "v1", "paper"] as const;
/** A SENT variant. */
export type SentVariant = typeof SENT_VARIANTS[number];

/** Loss aggregation modes (verl's `loss_agg_mode`; see `_loss_agg.ts`). */
export const AGG_MODES = [
  "token-mean",
  "seq-mean-token-sum",
  "seq-mean-token-mean",
  "seq-mean-token-sum-norm",
] as const;
/** An aggregation mode. */
export type AggMode = typeof AGG_MODES[number];

/** Every option of every loss. Each method reads only the ones it declares. */
export interface LossOptions {
  /** SENT token rule: `v2` (default; the published rule with boolean masking as intended),
   * `v2-literal` (the reference code's row-gathered covariance values), `v1` (β on every
   * selected token, token-mean over the selected tokens only), `paper` (β on every selected
   * token plus β·hiMult on the top-covariance ones). */
  variant?: SentVariant;
  /** PPO ε_low: the ratio is clipped from below at 1 − clipLow; in [0, 1]. Default 0.2. */
  clipLow?: number;
  /** PPO ε_high: the ratio is clipped from above at 1 + clipHigh; ≥ 0. Default 0.2. */
  clipHigh?: number;
  /** Dual-clip constant c > 1: for A < 0 the token loss is capped at −A·c. Default 3. */
  dualClipC?: number;
  /** c_H: the loss subtracts c_H times the aggregated current-policy entropy (with gradient);
   * ≥ 0. Default 0, except 0.001 for `entropy_bonus`. */
  entropyCoef?: number;
  /** α of the entropy-shaped advantage ψ = min(α·H_old, |A|/κ); > 0. Default 0.4. */
  entropyAlpha?: number;
  /** κ of the entropy-shaped advantage; > 1 so ψ never flips the sign of A. Default 2. */
  kappa?: number;
  /** Fraction of valid tokens the 80/20 mask keeps (the highest-entropy ones); in (0, 1].
   * Default 0.2. */
  entropyTopRatio?: number;
  /** What the 80/20 mask's policy term divides by: `all` valid tokens (default, the paper's
   * formula) or only the `selected` ones (5× the per-token weight at ratio 0.2). */
  normalizer?: "all" | "selected";
  /** Clip-Cov: fraction of valid tokens whose loss is zeroed (at least one); in (0, 1].
   * Default 0.0002. */
  clipCovRatio?: number;
  /** Clip-Cov: lower bound of the covariance window of candidates (exclusive). Default 1. */
  clipCovLb?: number;
  /** Clip-Cov: upper bound of the covariance window (exclusive); > clipCovLb. Default 5. */
  clipCovUb?: number;
  /** KL-Cov / SENT: fraction of the candidate tokens penalised per covariance extreme (at
   * least one); in (0, 1]. Default 0.0002. */
  klCovRatio?: number;
  /** β of the |log r| penalty towards the rollout policy; ≥ 0. Default 0.1. */
  ppoKlCoef?: number;
  /** SENT: whether the entropy set holds the `low`est (default) or `high`est entropies. */
  selection?: "low" | "high";
  /** SENT: fraction of valid tokens in the entropy set; in (0, 1]. Default 0.8 (0.2 for
   * `high_en`). */
  fraction?: number;
  /** SENT: β multiplier on the top-covariance tokens; ≥ 0. Default 2. */
  hiMult?: number;
  /** SENT: β multiplier on the bottom-covariance tokens; ≥ 0. Default 0.5. */
  loMult?: number;
  /** β_ref of the k3 KL to the reference policy, on all valid tokens; ≥ 0. Default 0.001. */
  refCoef?: number;
  /** Where selections, covariance means and denominators are taken: over the `micro`-batch
   * the graph sees (default, as the reference implementation), or the whole `mini`-batch
   * (selection inputs computed by the selection graph). */
  statScope?: "micro" | "mini";
  /** How token losses become one number (see `_loss_agg.ts`). Default `token-mean`. */
  aggMode?: AggMode;
  /** Divisor of `seq-mean-token-sum-norm` (Dr.GRPO's L_max); 0 (default) means the width of
   * the response mask the graph sees. A non-negative integer. */
  aggNormLength?: number;
  /** Sampling temperature the logits are divided by before log-prob and entropy; > 0.
   * Default 1. */
  temperature?: number;
}

/** A method's options after defaults and checks: every key present. */
export type ResolvedLossOptions = Readonly<Required<LossOptions>>;

/** Option name. */
export type LossOptionName = keyof LossOptions;

/** Raised for a bad method name or option: names the thing, the value and what was expected. */
export class LossConfigError extends Error {
  /** The option or name at fault. */
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = "LossConfigError";
    this.key = key;
  }
}

interface OptionRule {
  /** Default for every method that does not set its own. */
  readonly dflt: number | string;
  readonly ok: (v: unknown) => boolean;
  readonly expected: string;
}

const num = (dflt: number, ok: (x: number) => boolean, expected: string): OptionRule => ({
  dflt,
  ok: (v) => typeof v === "number" && Number.isFinite(v) && ok(v),
  expected,
});

const oneOf = (values: readonly string[]): OptionRule => ({
  dflt: values[0],
  ok: (v) => typeof v === "string" && values.includes(v),
  expected: `one of ${values.map((s) => JSON.stringify(s)).join(", ")}`,
});

const fraction = (dflt: number) => num(dflt, (x) => x > 0 && x <= 1, "a number in (0, 1]");
const nonNegative = (dflt: number) => num(dflt, (x) => x >= 0, "a number ≥ 0");

/** Every option: default (the SENT scripts' and verl's defaults) and valid range. */
const RULES: Readonly<Record<LossOptionName, OptionRule>> = {
  variant: oneOf(SENT_VARIANTS),
  clipLow: num(0.2, (x) => x >= 0 && x <= 1, "a number in [0, 1]"),
  clipHigh: nonNegative(0.2),
  dualClipC: num(3, (x) => x > 1, "a number > 1"),
  entropyCoef: nonNegative(0),
  entropyAlpha: num(0.4, (x) => x > 0, "a number > 0"),
  kappa: num(2, (x) => x > 1, "a number > 1"),
  entropyTopRatio: fraction(0.2),
  normalizer: oneOf(["all", "selected"]),
  clipCovRatio: fraction(0.0002),
  clipCovLb: num(1, () => true, "a finite number"),
  clipCovUb: num(5, () => true, "a finite number"),
  klCovRatio: fraction(0.0002),
  ppoKlCoef: nonNegative(0.1),
  selection: oneOf(["low", "high"]),
  fraction: fraction(0.8),
  hiMult: nonNegative(2),
  loMult: nonNegative(0.5),
  refCoef: nonNegative(0.001),
  statScope: oneOf(["micro", "mini"]),
  aggMode: oneOf(AGG_MODES),
  aggNormLength: num(0, (x) => Number.isInteger(x) && x >= 0, "a non-negative integer"),
  temperature: num(1, (x) => x > 0, "a number > 0"),
};

/** Options every method accepts. */
export const COMMON_OPTIONS: readonly LossOptionName[] = [
  "entropyCoef",
  "refCoef",
  "statScope",
  "aggMode",
  "aggNormLength",
  "temperature",
];

/** Every option name, in table order. */
export const OPTION_NAMES = Object.keys(RULES) as LossOptionName[];

/**
 * Complete and check one method's options.
 *
 * @param method The method name (for messages).
 * @param own The method's own options and their defaults (its registry entry).
 * @param given The user's options (from a preset or JSON; may be untyped).
 * @returns Every option, defaults filled in.
 * @throws LossConfigError naming the first bad option.
 */
export function resolveOptions(
  method: string,
  own: Readonly<Partial<Record<LossOptionName, number | string>>>,
  given: unknown,
): ResolvedLossOptions {
  if (given === undefined || given === null) given = {};
  if (typeof given !== "object" || Array.isArray(given)) {
    throw new LossConfigError(
      "options",
      `loss ${method}: options must be an object, got ${JSON.stringify(given)}`,
    );
  }
  const allowed = new Set<string>([...COMMON_OPTIONS, ...Object.keys(own)]);
  const out: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) out[name] = own[name] ?? RULES[name].dflt;
  for (const [key, value] of Object.entries(given as Record<string, unknown>)) {
    if (!allowed.has(key)) throw unknownOption(method, key, allowed);
    const rule = RULES[key as LossOptionName];
    if (value === undefined) continue;
    if (!rule.ok(value)) {
      throw new LossConfigError(
        key,
        `loss ${method}: option ${key} is ${JSON.stringify(value)}; expected ${rule.expected}`,
      );
    }
    out[key] = value;
  }
  if ((out.clipCovLb as number) >= (out.clipCovUb as number)) {
    throw new LossConfigError(
      "clipCovUb",
      `loss ${method}: option clipCovUb (${out.clipCovUb}) must be greater than clipCovLb ` +
        `(${out.clipCovLb})`,
    );
  }
  return out as unknown as ResolvedLossOptions;
}

/**
 * Check a registry entry's own options: known names, defaults in range.
 *
 * @param method The entry's name (for messages).
 * @param own Its options and defaults.
 * @throws LossConfigError naming the bad option.
 */
export function checkOwnOptions(
  method: string,
  own: Readonly<Partial<Record<LossOptionName, number | string>>>,
): void {
  for (const [key, value] of Object.entries(own)) {
    const rule = RULES[key as LossOptionName];
    if (!rule) throw unknownOption(method, key, new Set(OPTION_NAMES));
    if (!rule.ok(value)) {
      throw new LossConfigError(
        key,
        `loss ${method}: default of option ${key} is ${JSON.stringify(value)}; expected ` +
          rule.expected,
      );
    }
  }
}

function unknownOption(method: string, key: string, allowed: ReadonlySet<string>): Error {
  const near = [...allowed].find((a) => a.toLowerCase() === key.toLowerCase());
  const hint = near ? ` (did you mean ${near}?)` : "";
  const other = OPTION_NAMES.includes(key as LossOptionName)
    ? " does not apply to it"
    : " is unknown";
  return new LossConfigError(
    key,
    `loss ${method}: option ${key}${other}${hint}; its options are ${[...allowed].join(", ")}`,
  );
}
