/**
 * Small report inputs in the documented formats, for the edge cases the test preset's real run
 * does not reach: two seeds (so standard errors are not 0), methods that differ, a missing
 * method or seed, a stage with no artifact.
 *
 * `fixtureResults` builds a real `results.json` through `assembleResults` (so it passes the
 * schema check), with per-sample correctness drawn from a seeded stream per (policy, seed, set,
 * problem) at a per-policy success rate.
 */

import { Rng } from "../../pipeline/rng.ts";
import {
  assembleResults,
  type ResultEntry,
  type Results,
  seedResult,
} from "../../stages/_rl/results.ts";
import type { MetricRow, ReportInputs, TrainRun } from "../../reports/inputs.ts";

/** Success rate per policy of the fixture. */
export const SKILL: Readonly<Record<string, number>> = {
  base: 0.3,
  "base@t0.5": 0.35,
  grpo: 0.4,
  sent: 0.6,
};

/** Options for {@link fixtureResults}. */
export interface FixtureOptions {
  /** Policies (default every key of {@link SKILL}). */
  policies?: readonly string[];
  /** Seeds (default 1, 2). */
  seeds?: readonly number[];
  /** Eval sets (default two). */
  sets?: readonly string[];
  /** Problems per set (default 8). */
  problems?: number;
  /** Samples per problem (default 4). */
  n?: number;
  /** Entries to leave out, as `policy/seed/set`. */
  drop?: readonly string[];
}

/**
 * A results.json of the fixture.
 *
 * @param options Policies, seeds, sets, sizes, entries to drop.
 * @returns The validated document.
 */
export function fixtureResults(options: FixtureOptions = {}): Results {
  const policies = options.policies ?? Object.keys(SKILL);
  const seeds = options.seeds ?? [1, 2];
  const sets = options.sets ?? ["set-a", "set-b"];
  const n = options.n ?? 4;
  const entries: ResultEntry[] = [];
  for (const policy of policies) {
    for (const seed of seeds) {
      for (const set of sets) {
        if (options.drop?.includes(`${policy}/${seed}/${set}`)) continue;
        const problems = Array.from({ length: options.problems ?? 8 }, (_, p) => {
          const rng = Rng.fromSeed(`fixture/${policy}/${seed}/${set}/${p}`);
          const correct = Array.from({ length: n }, () => rng.float() < (SKILL[policy] ?? 0.5));
          return { id: `${set}-${p}`, correct, answers: correct.map((c) => (c ? "42" : "7")) };
        });
        const result = seedResult(problems, [1, 2, 4].filter((k) => k <= n));
        const greedy = 100 * problems.filter((p) => p.correct[0]).length / problems.length;
        entries.push({ set, policy, seed, seedResult: { ...result, greedy } });
      }
    }
  }
  return assembleResults(entries, [1, 2, 4].filter((k) => k <= n));
}

/** Per-step metric rows of one fixture training run. */
function trainRows(method: string, seed: number, steps: number): MetricRow[] {
  const rng = Rng.fromSeed(`fixture-train/${method}/${seed}`);
  const decay = method === "sent" ? 0.02 : 0.08;
  return Array.from({ length: steps }, (_, step) => ({
    step,
    bucket: method === "sent" && step >= steps / 2 ? 1 : 0,
    epoch: 0,
    "reward/mean": -0.6 + 0.08 * step + 0.05 * rng.float(),
    accuracy: 0.2 + 0.04 * step + 0.02 * rng.float(),
    entropy: 1.5 * Math.exp(-decay * step) + 0.05 * rng.float(),
    ref_kl: 0.001 * step * (1 + rng.float()),
    response_length: 30 + step + rng.float(),
    "loss/ppo_kl": 0.0005 * rng.float(),
    "loss/pg_clipfrac": method === "grpo" ? 0.01 * rng.float() : 0,
    "loss/frac_entropy_set": method === "sent" ? 0.8 : 0,
    "loss/frac_cov_hi": method === "sent" ? 0.002 : 0,
    "loss/frac_cov_lo": method === "sent" ? 0.002 : 0,
    "loss/frac_zeroed": 0,
  }));
}

/** Options for {@link fixtureInputs}. */
export interface InputsOptions extends FixtureOptions {
  /** Training runs to leave out, as `method/seed`. */
  dropTrain?: readonly string[];
  /** Leave these parts null / empty. */
  without?: readonly ("results" | "train" | "score" | "curriculum" | "warmup")[];
  /** Config overrides (shallow per section). */
  config?: Record<string, Record<string, unknown>>;
}

/**
 * Report inputs of the fixture: config, results, training metrics of grpo and sent × seeds,
 * the score stage's histograms, curriculum cuts and a warm-up curve. No artifacts (so no
 * provenance nodes): the pure builders are what these inputs test.
 *
 * @param options What to include, drop or override.
 * @returns The inputs.
 */
export function fixtureInputs(options: InputsOptions = {}): ReportInputs {
  const seeds = options.seeds ?? [1, 2];
  const without = new Set(options.without ?? []);
  const methods = ["grpo", "sent"];
  const train: TrainRun[] = methods.flatMap((method) =>
    seeds.filter((seed) => !options.dropTrain?.includes(`${method}/${seed}`)).map((seed) => ({
      method,
      seed,
      node: `train[method=${method},seed=${seed}]`,
      rows: trainRows(method, seed, 6),
    }))
  );
  const edges = Array.from(
    { length: 41 },
    (_, i) => Number((10 ** (-6 + i * 0.175)).toPrecision(6)),
  );
  const counts = edges.map((
    _,
    i,
  ) => (i > 20 ? Math.round(1000 * Math.exp(-((i - 32) ** 2) / 8)) : 0));
  counts.push(3);
  const config: Record<string, Record<string, unknown>> = {
    data: { evalSets: options.sets ?? ["set-a", "set-b"] },
    train: { methods },
    evaluate: { baseTemperatures: [0.5], ks: [1, 2, 4] },
    runtime: { seeds: [...seeds] },
    loss: { entropyTopRatio: 0.2, entropyAlpha: 0.4, kappa: 2 },
    curriculum: { split: "quantiles", buckets: 2, seed: 7 },
    score: { samples: 8, temperature: 1, seed: 3 },
    report: { title: "Fixture report", formats: ["html", "svg", "png"] },
  };
  for (const [section, values] of Object.entries(options.config ?? {})) {
    config[section] = { ...config[section], ...values };
  }
  return {
    config,
    results: without.has("results") ? null : fixtureResults(options),
    train: without.has("train") ? [] : train,
    score: without.has("score") ? null : {
      histogram: [
        { from: 0, to: 0.1, count: 9 },
        { from: 0.6, to: 0.7, count: 4 },
        { from: 1.0, to: 1.1, count: 2 },
        { from: 1.3, to: 1.4, count: 1 },
      ],
      summary: { problems: 16, samples: 8, temperature: 1, unit: "nats" },
      tokenEntropy: { edges, counts },
    },
    curriculum: without.has("curriculum") ? null : {
      stats: [
        { count: 8, minSe: 0, maxSe: 0, meanSe: 0 },
        { count: 8, minSe: 0.64, maxSe: 1.35, meanSe: 0.9 },
      ],
      cuts: [0.64],
    },
    warmup: without.has("warmup") ? null : Array.from(
      { length: 10 },
      (_, i) => ({ step: 10 * (i + 1), loss: 3 * Math.exp(-0.2 * i) + 0.5 }),
    ),
    artifacts: [],
    problems: [],
  };
}
