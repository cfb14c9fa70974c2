/**
 * From the run's config to one method's train step: the `loss.*` keys (plus the PPO clip, the
 * reference-KL coefficient and the temperature of `train.*`) become the options of the method's
 * registered policy loss (kernels/losses.ts), and the loss becomes a Qwen2 train step.
 *
 * Each method receives only the options it declares, so `loss.entropyCoef` is the bonus of
 * `entropy_bonus` and never leaks into another method, and `loss.ppoKlCoef` is β of the |log r|
 * penalties of `kl_cov`, `high_en` and `sent` only. Options every method reads: the statistic
 * scope, the aggregation mode, the reference-KL coefficient and the temperature.
 *
 * @module
 */

import type { AdamWOptions } from "../kernels/adamw.ts";
import {
  LOSS_METRICS,
  lossEntry,
  type LossOptions,
  policyLoss,
  resolveLossOptions,
} from "../kernels/losses.ts";
import { decays } from "../kernels/policy.ts";
import { buildTrainStep, type TrainStep } from "../kernels/train_step.ts";
import { buildLossGraph, parameterShapes, type Qwen2Config } from "../kernels/transformer.ts";

/** The `loss` config section (see pipeline/config_core.ts for each key's meaning). */
export type LossOptionsConfig = {
  statScope: "micro" | "mini";
  aggMode: string;
  dualClipC: number;
  entropyCoef: number;
  entropyAlpha: number;
  kappa: number;
  entropyTopRatio: number;
  normalizer: "all" | "selected";
  clipCovRatio: number;
  clipCovLb: number;
  clipCovUb: number;
  klCovRatio: number;
  ppoKlCoef: number;
  variant: string;
  hiMult: number;
  loMult: number;
};

/** Options that come from `train.*` rather than `loss.*`. */
export interface TrainLossKeys {
  temperature: number;
  clipLow: number;
  clipHigh: number;
  refCoef: number;
  adamw: AdamWOptions;
}

/** Options every method reads. */
const SHARED: readonly (keyof LossOptions)[] = ["statScope", "aggMode", "refCoef", "temperature"];

/**
 * The options of one method from the run's config.
 *
 * @param method A registered loss name.
 * @param loss The `loss` config section.
 * @param train The options taken from `train.*`.
 * @returns The options the method takes (checked; resolve them with `resolveLossOptions` to
 *   read the defaults filled in).
 */
export function methodLossOptions(
  method: string,
  loss: LossOptionsConfig,
  train: Omit<TrainLossKeys, "adamw">,
): LossOptions {
  const own = new Set(Object.keys(lossEntry(method).options));
  const all: Record<string, unknown> = { ...loss, ...train };
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(all)) {
    if (own.has(key) || SHARED.includes(key as keyof LossOptions)) given[key] = value;
  }
  resolveLossOptions(method, given); // checks every value now, naming the bad one
  return given as LossOptions;
}

/**
 * The train step of one method: the Qwen2 forward, the method's policy loss with its metrics,
 * backward, clipping and AdamW (weight decay on matrices only).
 *
 * @param config The policy's architecture.
 * @param method A registered loss name.
 * @param loss The `loss` config section.
 * @param train Clip, reference-KL coefficient, temperature and AdamW settings.
 * @returns The train step (its `data` lists the feeds each micro-batch needs).
 */
export function policyLossStep(
  config: Qwen2Config,
  method: string,
  loss: LossOptionsConfig,
  train: TrainLossKeys,
): TrainStep {
  const { adamw, ...rest } = train;
  const options = methodLossOptions(method, loss, rest);
  const graph = buildLossGraph(config, policyLoss(method, options), { name: `qwen2_${method}` });
  const params = [...parameterShapes(config).keys()].map((name) => ({ name, decay: decays(name) }));
  return buildTrainStep(graph, { ...adamw, params, metrics: LOSS_METRICS });
}
