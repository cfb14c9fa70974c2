/**
 * Policy-loss benchmark (`deno task bench losses`): what a registered loss adds to a training
 * step, against the plain next-token loss on the same model and batch.
 *
 * One training step (forward, backward, clipping and AdamW in one graph, `buildTrainStep`) of the
 * tiny policy (`tinyPolicyConfig` with the tiny-AIME character vocabulary) on 32 sequences of 64
 * tokens (the last 48 positions response), on the CPU EP with 2 intra-op threads. Every step is
 * warmed up; then in each round every loss step runs between two next-token steps, and its ratio
 * is the median over rounds of its time over the mean of those two (see `timePaired`). The loss
 * steps keep every metric of `LOSS_METRICS` as host outputs, as training does.
 *
 * Measured on the 2-core machine: the loss arithmetic alone (the direct SENT graph, forward and
 * backward, on 32 × 63 tokens) takes 0.17 ms of a ≈ 150 ms step; selections use TopK over the
 * flattened batch, never a full sort.
 *
 * Named target: `losses.sent_over_nll` ≤ 1.10 (SENT's step over the next-token step). Also
 * reported: `losses.clip_cov_over_nll`, `losses.kl_cov_over_nll` and each step's milliseconds.
 *
 * @example
 * ```ts
 * import { run } from "./bench_losses.ts";
 * const results = await run({ quick: true });
 * console.log(results.find((r) => r.name === "losses.sent_over_nll"));
 * ```
 *
 * @module
 */

import type { BenchResult } from "../pipeline/bench_types.ts";
import { tinyAimeTokenizer } from "../data/tokenizer_char.ts";
import { counterBits, streamKey } from "./counter_rng.ts";
import { clipCovUniforms, LOSS_METRICS, policyLoss } from "./losses.ts";
import { momentName } from "./adamw.ts";
import { decays, initWeights } from "./policy.ts";
import { compile, type HostTensor, hostTensor, type Program, zerosTensor } from "./session.ts";
import { buildTrainStep, type TrainStep } from "./train_step.ts";
import {
  buildLossGraph,
  type LossBuilder,
  nextTokenLoss,
  parameterShapes,
  type Qwen2Config,
  tinyPolicyConfig,
} from "./transformer.ts";

/** Options of `run`. */
export interface LossBenchOptions {
  /** Fewer timed rounds. */
  quick: boolean;
}

const THREADS = 2;
const WARMUP = 5;
const BATCH = 32;
const LENGTH = 64;
/** Prompt tokens per row; the loss covers the tokens after them. */
const PROMPT = 16;

/** The losses timed against the next-token step. */
const LOSSES: readonly { label: string; method: string; target?: string }[] = [
  { label: "sent", method: "sent", target: "<= 1.10" },
  { label: "clip_cov", method: "clip_cov" },
  { label: "kl_cov", method: "kl_cov" },
];

/** Data feeds shared by every step: token ids, masks, and the policy-loss inputs. */
function batchFeeds(config: Qwen2Config): Record<string, HostTensor> {
  const [B, T, W] = [BATCH, LENGTH, LENGTH - 1];
  const key = streamKey("bench_losses");
  const ids = Int32Array.from(
    { length: B * T },
    (_, i) => (i % T === 0 ? 1 : 3 + (counterBits(key, i) % (config.vocabSize - 3))),
  );
  const u = (i: number) => counterBits(key, B * T + i) / 2 ** 32;
  const perToken = (f: (i: number) => number) =>
    hostTensor("float32", [B, W], Float32Array.from({ length: B * W }, (_, i) => f(i)));
  const logp = (i: number) => -Math.log(config.vocabSize) + 0.1 * (u(i) - 0.5);
  return {
    input_ids: hostTensor("int32", [B, T], ids),
    attention_mask: hostTensor("int32", [B, T], new Int32Array(B * T).fill(1)),
    position_ids: hostTensor("int32", [B, T], Int32Array.from({ length: B * T }, (_, i) => i % T)),
    loss_mask: hostTensor(
      "float32",
      [B, T],
      Float32Array.from({ length: B * T }, (_, i) => (i % T >= PROMPT ? 1 : 0)),
    ),
    response_mask: perToken((i) => (i % W >= PROMPT - 1 ? 1 : 0)),
    old_logp: perToken(logp),
    ref_logp: perToken((i) => logp(i) + 0.05 * (u(i + 7) - 0.5)),
    old_entropy: perToken(() => Math.log(config.vocabSize)),
    advantages: hostTensor(
      "float32",
      [B],
      Float32Array.from({ length: B }, (_, r) => (r % 3 === 0 ? 1.5 : -0.6)),
    ),
    loss_scale: hostTensor("float32", [], [1]),
    clip_cov_uniforms: hostTensor("float32", [B, W], clipCovUniforms(key, B * W)),
  };
}

/** A compiled train step and its feeds (state at its initial values, data as above). */
async function timedStep(
  config: Qwen2Config,
  loss: LossBuilder,
  metrics: readonly string[],
  data: Record<string, HostTensor>,
): Promise<{ program: Program; feeds: Record<string, HostTensor> }> {
  const graph = buildLossGraph(config, loss);
  const params = [...parameterShapes(config).keys()].map((name) => ({ name, decay: decays(name) }));
  const step: TrainStep = buildTrainStep(graph, { params, metrics });
  const weights = initWeights(config, { seed: 1 });
  const shapes = parameterShapes(config);
  const feeds: Record<string, HostTensor> = {
    lr: hostTensor("float32", [], [1e-6]),
    step: hostTensor("float32", [], [1]),
  };
  for (const [name, shape] of shapes) {
    feeds[name] = hostTensor("float32", shape, weights.get(name)!);
    feeds[momentName(name, "m")] = zerosTensor("float32", shape);
    feeds[momentName(name, "v")] = zerosTensor("float32", shape);
  }
  for (const name of step.data) feeds[name] = data[name];
  const program = await compile(step.graph, { device: "cpu", threads: THREADS });
  return { program, feeds };
}

type Timed = { program: Program; feeds: Record<string, HostTensor> };

async function timeOne({ program, feeds }: Timed): Promise<number> {
  const t0 = performance.now();
  await program.run(feeds);
  return performance.now() - t0;
}

/**
 * Paired timings: each round runs the reference step, then each loss step followed by the
 * reference again (R, L1, R, L2, R, …), and a loss step's ratio is its time over the mean of the
 * two reference runs around it. The median of those per-round ratios is steady under the shared
 * machine's changing load, which plain medians of separate runs are not (measured: 1.00 to 1.10
 * for the same two graphs).
 */
async function timePaired(
  reference: Timed,
  steps: readonly Timed[],
  rounds: number,
): Promise<{ referenceMs: number; ms: number[]; ratios: number[] }> {
  for (const s of [reference, ...steps]) {
    for (let i = 0; i < WARMUP; i++) await s.program.run(s.feeds);
  }
  const refTimes: number[] = [];
  const times = steps.map(() => [] as number[]);
  const ratios = steps.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    let before = await timeOne(reference);
    refTimes.push(before);
    for (const [i, s] of steps.entries()) {
      const t = await timeOne(s);
      const after = await timeOne(reference);
      refTimes.push(after);
      times[i].push(t);
      ratios[i].push(t / ((before + after) / 2));
      before = after;
    }
  }
  return { referenceMs: median(refTimes), ms: times.map(median), ratios: ratios.map(median) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Run the policy-loss benchmark.
 *
 * @param opts `quick` shortens the timed rounds.
 * @returns Per-step milliseconds, then each loss's ratio to the next-token step.
 */
export async function run(opts: LossBenchOptions): Promise<BenchResult[]> {
  const config = tinyPolicyConfig(tinyAimeTokenizer().vocabSize);
  const data = batchFeeds(config);
  const reference = await timedStep(config, nextTokenLoss, [], data);
  const steps: Timed[] = [];
  for (const l of LOSSES) {
    steps.push(await timedStep(config, policyLoss(l.method), LOSS_METRICS, data));
  }
  const t = await timePaired(reference, steps, opts.quick ? 5 : 15);
  for (const s of [reference, ...steps]) await s.program.release();
  const results: BenchResult[] = [
    { name: "losses.nll_step_ms", value: round(t.referenceMs), unit: "ms" },
  ];
  LOSSES.forEach((l, i) =>
    results.push({ name: `losses.${l.label}_step_ms`, value: round(t.ms[i]), unit: "ms" })
  );
  LOSSES.forEach((l, i) =>
    results.push({
      name: `losses.${l.label}_over_nll`,
      value: round(t.ratios[i]),
      unit: "x",
      reference: round(t.referenceMs),
      ratio: round(t.ratios[i]),
      ...(l.target ? { target: l.target } : {}),
    })
  );
  return results;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  for (const r of await run({ quick })) console.log(JSON.stringify(r));
}
