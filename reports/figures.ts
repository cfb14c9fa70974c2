/**
 * The report's figures: one entry per figure, in page order, each building its Vega-Lite spec
 * from the run's inputs or saying why it cannot (no such artifact, no such metric). A new figure
 * is one new entry.
 *
 * | id | what |
 * | --- | --- |
 * | `entropy` | mean token entropy per step per method: the entropy-collapse figure |
 * | `reward`, `accuracy` | learning curves, mean ± SE across seeds |
 * | `pass_at_k` | Pass@k against k per eval set and policy |
 * | `semantic_entropy` | SE histogram of the training set with the curriculum cut points |
 * | `token_entropy` | token-entropy distribution (log scale) with the low-entropy cut |
 * | `ref_kl`, `ppo_kl`, `clip_fraction`, `selected_tokens`, `response_length` | per-step diagnostics |
 * | `warmup_loss` | the base warm-up loss |
 *
 * @example
 * ```ts ignore
 * import { buildFigures } from "./figures.ts";
 * const { figures, skipped } = buildFigures(inputs);
 * figures.map((f) => f.id); // ["entropy", "reward", …]
 * ```
 *
 * @module
 */

import { STEP_METRICS } from "../stages/train.ts";
import { curveBands, seedFrame, stepFrame, summarizeSeeds } from "./frames.ts";
import { histogramQuantile } from "./histogram_quantile.ts";
import type { ReportInputs } from "./inputs.ts";
import { policyColumns, policyLabel } from "./policies.ts";
import type { FigureSpec } from "./spec_common.ts";
import { type CurvePoint, curveSpec } from "./spec_curve.ts";
import { seHistogramSpec, tokenEntropyBars, tokenEntropySpec } from "./spec_histograms.ts";
import { type KPoint, passAtKSpec } from "./spec_pass_at_k.ts";
import { warmupSpec } from "./spec_warmup.ts";

/** A built figure. */
export interface Figure {
  /** Stable id (file names, anchors). */
  id: string;
  /** Title. */
  title: string;
  /** What the figure shows, in a sentence or two. */
  caption: string;
  /** The Vega-Lite spec, data inlined. */
  spec: FigureSpec;
}

/** A figure that could not be drawn, and why. */
export interface SkippedFigure {
  /** Stable id. */
  id: string;
  /** Title. */
  title: string;
  /** Why. */
  reason: string;
}

/** One registered figure: its spec, or the reason it cannot be drawn. */
interface FigureEntry {
  id: string;
  title: string;
  caption: string;
  build(inputs: ReportInputs): FigureSpec | string;
}

/** Method names in `train.methods` order, then any other trained ones. */
function methodOrder(inputs: ReportInputs): string[] {
  const configured = ((inputs.config.train as { methods?: string[] } | undefined)?.methods) ?? [];
  const trained = [...new Set(inputs.train.map((r) => r.method))];
  return [
    ...configured.filter((m) => trained.includes(m)),
    ...trained.filter((m) => !configured.includes(m)),
  ];
}

/** Descriptions of the loss-graph metrics the figures use (logged as `loss/<name>`). */
const LOSS_METRICS: Readonly<Record<string, string>> = {
  "loss/ppo_kl":
    "|log r| between the updated and the rollout policy (ℓ_old − ℓ for PPO-clip methods)",
  "loss/pg_clipfrac":
    "share of valid tokens whose clipped surrogate is taken (Clip-Cov: tokens zeroed)",
  "loss/frac_entropy_set": "entropy set (SENT's low-entropy 80 %, High_En's or Mask's top 20 %)",
  "loss/frac_cov_hi": "top-covariance tokens (KL-Cov, SENT, High_En)",
  "loss/frac_cov_lo": "bottom-covariance tokens (SENT, High_En)",
  "loss/frac_zeroed": "tokens whose loss Clip-Cov zeroed",
};

/** A learning-curve entry over one or more step metrics. */
function curve(
  id: string,
  title: string,
  metrics: readonly string[],
  options: { subtitle: string; yTitle: string; caption: string; panels?: Record<string, string> },
): FigureEntry {
  return {
    id,
    title,
    caption: options.caption,
    build(inputs) {
      if (inputs.train.length === 0) return "no train node in this run";
      const order = methodOrder(inputs);
      const points: CurvePoint[] = metrics.flatMap((metric) =>
        (curveBands(stepFrame(inputs.train, metric)).objects() as {
          method: string;
          step: number;
          mean: number;
          lo: number;
          hi: number;
          n: number;
        }[]).map((b) => ({ ...b, series: policyLabel(b.method), metric }))
      );
      if (points.length === 0) return `no train node logged ${metrics.join(", ")}`;
      points.sort((a, b) =>
        order.indexOf(methodOf(a.series, order)) - order.indexOf(methodOf(b.series, order)) ||
        metrics.indexOf(a.metric) - metrics.indexOf(b.metric) || a.step - b.step
      );
      return curveSpec(points, {
        title,
        subtitle: options.subtitle,
        yTitle: options.yTitle,
        series: order.map(policyLabel),
        metricTitles: options.panels,
      });
    },
  };
}

function methodOf(label: string, order: readonly string[]): string {
  return order.find((m) => policyLabel(m) === label) ?? label;
}

const seedsNote = "lines: mean across seeds; bands: ± one standard error (none for one seed)";

/** Every figure, in page order. */
export const FIGURES: readonly FigureEntry[] = [
  curve("entropy", "Policy entropy per step", ["entropy"], {
    subtitle: `${STEP_METRICS.entropy}; ${seedsNote}`,
    yTitle: "entropy (nats)",
    caption:
      "The entropy-collapse figure: SENT's claim is that its entropy stays above GRPO's as " +
      "training proceeds.",
  }),
  curve("reward", "Reward per step", ["reward/mean"], {
    subtitle: `${STEP_METRICS["reward/mean"]}; ${seedsNote}`,
    yTitle: "mean reward (±1)",
    caption: "Training reward: +1 for a correct final answer, −1 otherwise.",
  }),
  curve("accuracy", "Training accuracy per step", ["accuracy"], {
    subtitle: `${STEP_METRICS.accuracy}; ${seedsNote}`,
    yTitle: "accuracy",
    caption: "Share of the step's sampled responses whose final answer is correct.",
  }),
  {
    id: "pass_at_k",
    title: "Pass@k against k",
    caption: "Unbiased Pass@k from all n samples per problem, per eval set and policy.",
    build(inputs) {
      if (inputs.results === null) return "no results.json in this run";
      const frame = seedFrame(inputs.results).filter((d: { metric: string }) =>
        d.metric === "pass@k"
      );
      const rows = summarizeSeeds(frame, ["set", "policy", "k"]).objects() as {
        set: string;
        policy: string;
        k: number;
        mean: number;
        se: number;
      }[];
      if (rows.length === 0) return "results.json has no Pass@k values";
      const columns = policyColumns([...new Set(rows.map((r) => r.policy))], methodsOf(inputs));
      const sets = configuredSets(inputs, rows.map((r) => r.set));
      const points: KPoint[] = rows.map((r) => ({
        set: r.set,
        series: policyLabel(r.policy),
        k: r.k,
        mean: r.mean,
        se: r.se,
      }));
      return passAtKSpec(points, { series: columns.map((c) => c.label), sets });
    },
  },
  {
    id: "semantic_entropy",
    title: "Semantic entropy of the training set",
    caption: "Semantic entropy of each training problem under the base policy (answers clustered " +
      "by the grader, nats); dashed lines are where the curriculum cuts the sorted problems " +
      "into buckets, lowest entropy trained first.",
    build(inputs) {
      if (inputs.score === null) return "no score artifact in this run";
      if (inputs.score.histogram.length === 0) return "the score stage recorded no problems";
      return seHistogramSpec(inputs.score.histogram, inputs.curriculum?.cuts ?? []);
    },
  },
  {
    id: "token_entropy",
    title: "Token-entropy distribution",
    caption:
      "Entropy of every response token sampled while scoring, log-spaced bins on log axes; " +
      "the dashed line is the low-entropy cut (the quantile at 1 − loss.entropyTopRatio, read " +
      "off the histogram): SENT regularises tokens below it.",
    build(inputs) {
      const hist = inputs.score?.tokenEntropy;
      if (!hist) return "no token_entropy.json in this run";
      const bars = tokenEntropyBars(hist.edges, hist.counts);
      if (bars.length === 0) return "no response tokens were counted";
      const top =
        (inputs.config.loss as { entropyTopRatio?: number } | undefined)?.entropyTopRatio ?? 0.2;
      const at = histogramQuantile(bars, 1 - top);
      return tokenEntropySpec(bars, at === null ? null : { at, share: 1 - top });
    },
  },
  curve("ref_kl", "KL to the reference per step", ["ref_kl"], {
    subtitle: `${STEP_METRICS.ref_kl}; ${seedsNote}`,
    yTitle: "k3 KL",
    caption: "Drift of the rollout policy from the KL reference (the base, or the bucket's start " +
      "with curriculum.resetReference).",
  }),
  curve("ppo_kl", "Update size per step", ["loss/ppo_kl"], {
    subtitle: `${LOSS_METRICS["loss/ppo_kl"]}; ${seedsNote}`,
    yTitle: "ppo_kl",
    caption: "How far each update moves the policy from the one that sampled the batch.",
  }),
  curve("clip_fraction", "Clip fraction per step", ["loss/pg_clipfrac"], {
    subtitle: `${LOSS_METRICS["loss/pg_clipfrac"]}; ${seedsNote}`,
    yTitle: "share of tokens",
    caption: "0 for the unclipped methods (KL-Cov, High_En, SENT).",
  }),
  curve(
    "selected_tokens",
    "Selected-token fractions per step",
    ["loss/frac_entropy_set", "loss/frac_cov_hi", "loss/frac_cov_lo", "loss/frac_zeroed"],
    {
      subtitle: `share of valid tokens in each selection; ${seedsNote}`,
      yTitle: "share",
      caption: "Which tokens each method's rule picked: " +
        Object.entries(LOSS_METRICS).filter(([k]) => k.startsWith("loss/frac_"))
          .map(([k, v]) => `${k.slice(5)}: ${v}`).join("; ") +
        ".",
      panels: {
        "loss/frac_entropy_set": "entropy set",
        "loss/frac_cov_hi": "top covariance",
        "loss/frac_cov_lo": "bottom covariance",
        "loss/frac_zeroed": "zeroed (Clip-Cov)",
      },
    },
  ),
  curve("response_length", "Response length per step", ["response_length"], {
    subtitle: `${STEP_METRICS.response_length}; ${seedsNote}`,
    yTitle: "tokens",
    caption: "Mean length of the sampled responses.",
  }),
  {
    id: "warmup_loss",
    title: "Base warm-up loss",
    caption: "The SFT warm-up that made the base policy (absent when the base is an imported " +
      "checkpoint).",
    build(inputs) {
      if (inputs.warmup === null) {
        return "no warm-up (the base was imported, or there is no base artifact)";
      }
      const points = inputs.warmup.flatMap((row) =>
        typeof row.step === "number" && typeof row.loss === "number" && Number.isFinite(row.loss)
          ? [{ step: row.step, loss: row.loss }]
          : []
      );
      return points.length === 0 ? "the warm-up logged no loss" : warmupSpec(points);
    },
  },
];

function methodsOf(inputs: ReportInputs): string[] {
  return ((inputs.config.train as { methods?: string[] } | undefined)?.methods) ?? [];
}

function configuredSets(inputs: ReportInputs, present: readonly string[]): string[] {
  const sets = ((inputs.config.data as { evalSets?: string[] } | undefined)?.evalSets) ?? [];
  const seen = [...new Set(present)];
  return [...sets.filter((s) => seen.includes(s)), ...seen.filter((s) => !sets.includes(s))];
}

/**
 * Build every figure that the inputs allow.
 *
 * @param inputs The report's inputs.
 * @returns Built figures in page order, and the skipped ones with their reasons.
 */
export function buildFigures(
  inputs: ReportInputs,
): { figures: Figure[]; skipped: SkippedFigure[] } {
  const figures: Figure[] = [];
  const skipped: SkippedFigure[] = [];
  for (const entry of FIGURES) {
    const built = entry.build(inputs);
    if (typeof built === "string") {
      skipped.push({ id: entry.id, title: entry.title, reason: built });
    } else figures.push({ id: entry.id, title: entry.title, caption: entry.caption, spec: built });
  }
  return { figures, skipped };
}
