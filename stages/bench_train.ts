/**
 * Training-loop benchmark (`deno task bench train`): where the time of a GRPO rollout step goes,
 * and how close its update gets to the engine's plain train step.
 *
 * It runs the real `train` stage in this process (`main(["stage", "train", …])` with the stage
 * registry), on the tiny preset's model and rollout sizes (16 prompts × 8 responses, two
 * mini-batches of two 32-row micro-batches, 40 response tokens at most), changed only where a
 * benchmark must (see {@link benchSets}): one method (`sent`), one seed, a short base warm-up so
 * that rewards are not all −1, and `steps × promptsPerStep` training problems. Dataset, base,
 * score and curriculum are cached in the benchmark's own store (`.sent/bench/train/store`); the
 * train node is recomputed every time (`--force`). Figures come from its `metrics.jsonl`:
 * medians over the steps that do not start a curriculum bucket (a bucket's first step compiles
 * the new trainer's and policies' programs and warms up their sessions).
 *
 * The machine's references run in the same process on the base policy, half of their rounds
 * before the train stage and half after it (so a load that drifts during the run weighs on both
 * sides alike), each reported as the median over all rounds:
 * - the engine's plain train step: `policyTrainStep(config, nextTokenLoss)` run by
 *   `Trainer.step` on micro-batches shaped exactly as the loop's (a step's worth of rollouts
 *   sampled from the base policy, split into mini- and micro-batches and each cut to its
 *   longest row, as the loop does), warmed up, tokens counted as the loop counts them (prompt +
 *   response tokens, padding excluded);
 * - plain `generate` with the loop's sampling options and batch size, warmed up, response
 *   tokens per second as the loop counts them.
 *
 * Figures: `train.rollout_tokens_s` and `train.update_tokens_s` (reference and ratio: the
 * machine's own rate), `train.update_vs_engine` (target ≥ 0.8), the shares of a step
 * `train.share_generate`, `train.share_score`, `train.share_update`, `train.share_other` (other =
 * step − generate − score − update, the bookkeeping; target ≤ 0.10), each the median of the
 * per-step shares, then `train.step_s` and `train.accuracy` (the mean reward signal the steps
 * saw). The loop's phases as it times them: generate is sampling; score is rewards, the rollout
 * batch and the π_old and reference scores; update is building the micro-batch feeds,
 * accumulate and apply; other is the metrics row. Checkpoints are written after a step's row
 * is logged, outside every step's time.
 *
 * Even so, on a shared machine the ratios move with the load of the moment (measured on the 2-core machine at load 3–6: the same update ran
 * at 400–1,800 ms wall for the same ~450 ms of CPU time); run it when the machine is quiet.
 *
 * @example
 * ```ts ignore
 * import { run } from "./bench_train.ts";
 * const results = await run({ quick: true });
 * console.log(results.find((r) => r.name === "train.share_other"));
 * ```
 *
 * @module
 */

import type { BenchResult } from "../pipeline/bench_types.ts";
import { main } from "../pipeline/cli.ts";
import { loadConfig } from "../pipeline/config.ts";
import { readLockFile, statePaths } from "../pipeline/records.ts";
import { ArtifactStore } from "../pipeline/store.ts";
import type { ProblemRow } from "../data/rows.ts";
import { policyTrainStep, type TokenBatch, trainerFor } from "../kernels/policy.ts";
import { type Rollout, rolloutBatch, rowRanges, sliceRows } from "../kernels/rollout.ts";
import { generate, type SampleRequest, type SamplingOptions } from "../kernels/sampling.ts";
import { type Device, HostTensor } from "../kernels/session.ts";
import { nextTokenLoss } from "../kernels/transformer.ts";
import { loadStagePolicy, type StagePolicy } from "./_policy_io.ts";
import { stages } from "./mod.ts";
import type { TrainConfig } from "./train.ts";

/** Options of {@link benchTrain}. */
export interface TrainBenchOptions {
  /** Rollout steps of the run (spread over the curriculum's buckets). */
  steps: number;
  /** Preset the run starts from; default `tiny`. */
  preset?: string;
  /** Artifact store of the run; default `.sent/bench/train/store`. */
  store?: string;
  /** Base warm-up steps; default {@link WARMUP_STEPS}, `null` keeps the preset's. */
  warmupSteps?: number | null;
  /** Timed rounds of each reference, half before the run and half after; default 6. */
  rounds?: number;
  /** Where the stage's summary lines go; default stderr (stdout carries the report). */
  log?: (text: string) => void;
}

/** The method the benchmark trains. */
const METHOD = "sent";
/** The seed it trains with. */
const SEED = 1;
/**
 * Base warm-up steps of the benchmark's run: enough that some responses are correct (the tiny
 * policy is near 25 % after 1,000 steps), short enough that the first run stays near a minute.
 */
export const WARMUP_STEPS = 500;
/** Untimed runs of each reference program shape before timing. */
const WARMUP_RUNS = 3;
const DEFAULT_STORE = ".sent/bench/train/store";

/**
 * The `--set` overrides of the benchmark's run.
 *
 * @param promptsPerStep The preset's `train.promptsPerStep`.
 * @param o Steps and warm-up.
 * @returns Overrides, in order.
 */
export function benchSets(
  promptsPerStep: number,
  o: Pick<TrainBenchOptions, "steps" | "warmupSteps">,
): string[] {
  const warmup = o.warmupSteps === undefined ? WARMUP_STEPS : o.warmupSteps;
  return [
    `train.methods=${METHOD}`,
    `runtime.seeds=${SEED}`,
    `data.trainProblems=${o.steps * promptsPerStep}`,
    ...(warmup === null ? [] : [`base.warmup.steps=${warmup}`]),
  ];
}

/** One row of metrics.jsonl, as far as the benchmark reads it. */
type StepRow = Record<string, number>;

/** The medians the benchmark reports from the run's metrics rows. */
export interface LoopFigures {
  /** Steps the medians are over. */
  steps: number;
  rolloutTokensPerS: number;
  updateTokensPerS: number;
  stepSeconds: number;
  /** Median share of each part of a step. */
  shares: { generate: number; score: number; update: number; other: number };
  /** Mean accuracy of those steps. */
  accuracy: number;
}

/**
 * Medians over the measured steps of a run: every step except the first of each bucket.
 * other = step − generate − score − update.
 *
 * @param rows metrics.jsonl rows in step order.
 * @returns The loop's figures.
 * @throws Error when no step is left to measure.
 */
export function loopFigures(rows: readonly StepRow[]): LoopFigures {
  const measured = rows.filter((r, i) => i > 0 && r.bucket === rows[i - 1].bucket);
  if (measured.length === 0) {
    throw new Error(
      `${rows.length} steps logged, none after a bucket's first; expected at least ` +
        "two steps per curriculum bucket",
    );
  }
  const share = (f: (r: StepRow) => number) => median(measured.map((r) => f(r) / r.step_seconds));
  const [g, s, u] = ["seconds/generate", "seconds/score", "seconds/update"];
  return {
    steps: measured.length,
    rolloutTokensPerS: median(measured.map((r) => r.rollout_tokens_per_s)),
    updateTokensPerS: median(measured.map((r) => r.tokens_per_s)),
    stepSeconds: median(measured.map((r) => r.step_seconds)),
    shares: {
      generate: share((r) => r[g]),
      score: share((r) => r[s]),
      update: share((r) => r[u]),
      other: share((r) => r.step_seconds - r[g] - r[s] - r[u]),
    },
    accuracy: measured.reduce((a, r) => a + r.accuracy, 0) / measured.length,
  };
}

/** How the benchmark calls the CLI. */
interface RunSpec {
  preset: string;
  sets: readonly string[];
  store: string;
  log: (text: string) => void;
}

/**
 * Run one stage's nodes (and what they need) in this process, then find the named nodes'
 * artifact folders through the lock file.
 */
async function runStage(
  spec: RunSpec,
  stage: string,
  flags: readonly string[],
  nodes: readonly string[],
): Promise<string[]> {
  const argv = ["stage", stage, ...flags, "--preset", spec.preset, "--store", spec.store];
  for (const s of spec.sets) argv.push("--set", s);
  const code = await main(argv, { stages, stdout: spec.log, stderr: spec.log });
  if (code !== 0) throw new Error(`sent ${argv.join(" ")} exited with ${code}`);
  const paths = statePaths(Deno.cwd(), spec.store);
  const lock = await readLockFile(paths.lockFile);
  const artifacts = new ArtifactStore(paths.store);
  return nodes.map((node) => {
    const entry = lock?.nodes[node];
    if (!entry) throw new Error(`${paths.lockFile} has no node ${node}`);
    return artifacts.artifactDir(node.split("[")[0], entry.key);
  });
}

async function readRows(path: string): Promise<StepRow[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((line) => JSON.parse(line));
}

/**
 * The micro-batches of a step as the loop builds them: mini-batches of ⌈B / miniBatches⌉ rows
 * in order, micro-batches of `microBatchSize` rows, each cut to its longest row.
 */
function loopMicroBatches(rollout: Rollout, t: TrainConfig["train"]): Rollout[] {
  const B = rollout.batch.batch;
  const out: Rollout[] = [];
  for (const [m0, m1] of rowRanges(B, Math.ceil(B / t.miniBatches))) {
    for (const [u0, u1] of rowRanges(m1 - m0, t.microBatchSize)) {
      out.push(trimRows(sliceRows(rollout, m0 + u0, m0 + u1)));
    }
  }
  return out;
}

/** A rollout cut to its longest row (≥ 2 columns). */
function trimRows(part: Rollout): Rollout {
  const { batch: B, length: T } = part.batch;
  let L = 2;
  for (let i = 0; i < B; i++) L = Math.max(L, part.promptLengths[i] + part.responseLengths[i]);
  const cut = <A extends Int32Array | Float32Array>(a: A, from: number, to: number): A => {
    const out = new (a.constructor as { new (n: number): A })(B * to);
    for (let r = 0; r < B; r++) out.set(a.subarray(r * from, r * from + to), r * to);
    return out;
  };
  const batch: TokenBatch = {
    batch: B,
    length: L,
    ids: cut(part.batch.ids, T, L),
    mask: cut(part.batch.mask, T, L),
    positions: cut(part.batch.positions, T, L),
  };
  return { ...part, batch, responseMask: cut(part.responseMask, T - 1, L - 1) };
}

/** Feeds of the next-token step for a micro-batch: the loss covers its response tokens. */
function nextTokenFeeds(part: Rollout): Record<string, HostTensor> {
  const { batch: B, length: L, ids, mask, positions } = part.batch;
  // loss_mask [B, L]: token k is a response token ⇔ it is predicted at k − 1 (responseMask).
  const lossMask = new Float32Array(B * L);
  for (let r = 0; r < B; r++) {
    lossMask.set(part.responseMask.subarray(r * (L - 1), (r + 1) * (L - 1)), r * L + 1);
  }
  return {
    input_ids: new HostTensor("int32", [B, L], ids),
    attention_mask: new HostTensor("int32", [B, L], mask),
    position_ids: new HostTensor("int32", [B, L], positions),
    loss_mask: new HostTensor("float32", [B, L], lossMask),
  };
}

/** A step's worth of requests: the first `promptsPerStep` problems × `groupSize` samples. */
function stepRequests(
  bundle: StagePolicy,
  rows: readonly ProblemRow[],
  t: TrainConfig["train"],
  round: number,
): SampleRequest[] {
  return rows.slice(0, t.promptsPerStep).flatMap((p) =>
    Array.from({ length: t.groupSize }, (_, j) => ({
      prompt: bundle.promptIds(p.problem),
      problem: `bench/${round}/${p.id}`,
      sample: j,
    }))
  );
}

/** The machine's references, warmed up and ready to time. */
interface ReferenceRig {
  /** Shapes of the micro-batches the engine reference runs, `rows×length`. */
  shapes: string[];
  /**
   * One timed round of each reference.
   * @param r Round number (fresh sampling requests per round).
   * @returns Plain `generate` response tokens/s and plain `Trainer.step` tokens/s.
   */
  round(r: number): Promise<{ generate: number; engine: number }>;
  /** Free every session. */
  release(): Promise<void>;
}

/**
 * Set up both references on the base policy: one untimed step's worth of sampling, whose
 * rollouts become the engine reference's micro-batches (split and cut as the loop does), and
 * untimed train steps on each of them.
 */
async function openReferences(
  dirs: { base: string; dataset: string },
  config: TrainConfig,
  device: { device: Device; threads: number },
): Promise<ReferenceRig> {
  const t = config.train;
  const bundle = await loadStagePolicy(dirs.base, device);
  const rows = (await Deno.readTextFile(`${dirs.dataset}/train.jsonl`)).trim().split("\n")
    .map((line) => JSON.parse(line) as ProblemRow);
  const sampling: SamplingOptions = {
    seed: "bench/train",
    maxNewTokens: t.maxResponseTokens,
    padId: bundle.tokenizer.padId,
    eosId: bundle.tokenizer.eosId,
    temperature: t.temperature,
    topP: t.topP,
    batchSize: t.batchSize,
  };
  const requests = stepRequests(bundle, rows, t, -1);
  const completions = await generate(bundle.policy, requests, sampling);
  const rollout = rolloutBatch(requests.map((r) => r.prompt), completions.map((c) => c.tokens), {
    padId: bundle.tokenizer.padId,
  });
  const micros = loopMicroBatches(rollout, t).map((part) => ({
    feeds: nextTokenFeeds(part),
    tokens: count(part.batch.mask),
    shape: `${part.batch.batch}×${part.batch.length}`,
  }));
  const step = policyTrainStep(bundle.policy.config, nextTokenLoss, {
    beta1: t.adamBeta1,
    beta2: t.adamBeta2,
    weightDecay: t.weightDecay,
    maxGradNorm: t.gradClip,
  });
  const trainer = await trainerFor(bundle.policy, step, device);
  for (let i = 0; i < WARMUP_RUNS; i++) {
    for (const m of micros) await trainer.step(m.feeds, { lr: t.lr });
  }
  const tokens = micros.reduce((n, m) => n + m.tokens, 0);
  return {
    shapes: micros.map((m) => m.shape),
    async round(r) {
      let t0 = performance.now();
      const sampled = await generate(bundle.policy, stepRequests(bundle, rows, t, r), sampling);
      const generateSeconds = (performance.now() - t0) / 1000;
      t0 = performance.now();
      for (const m of micros) await trainer.step(m.feeds, { lr: t.lr });
      const engineSeconds = (performance.now() - t0) / 1000;
      return {
        generate: sampled.reduce((n, c) => n + c.tokens.length, 0) / generateSeconds,
        engine: tokens / engineSeconds,
      };
    },
    async release() {
      await trainer.release();
      await bundle.policy.release();
    },
  };
}

/** Timed rounds of both references. */
async function timeRounds(rig: ReferenceRig, first: number, rounds: number) {
  const out = { generate: [] as number[], engine: [] as number[] };
  for (let r = first; r < first + rounds; r++) {
    const { generate, engine } = await rig.round(r);
    out.generate.push(generate);
    out.engine.push(engine);
  }
  return out;
}

/**
 * Run the train stage on the benchmark's settings, then the references, and compare.
 *
 * @param o Steps, preset, store, warm-up, rounds.
 * @returns The figures (see the module doc).
 */
export async function benchTrain(o: TrainBenchOptions): Promise<BenchResult[]> {
  const preset = o.preset ?? "tiny";
  const store = o.store ?? DEFAULT_STORE;
  const log = o.log ?? ((text: string) => console.error(text));
  const base = await loadConfig({ preset });
  const promptsPerStep = (base.values as unknown as TrainConfig).train.promptsPerStep;
  const sets = benchSets(promptsPerStep, o);
  const resolved = await loadConfig({ preset, sets });
  const config = resolved.values as unknown as TrainConfig & {
    runtime: { device: Device; threads: number };
  };
  const device = {
    device: config.runtime.device,
    threads: config.runtime.threads || navigator.hardwareConcurrency,
  };
  const spec: RunSpec = { preset, sets, store, log };
  const rounds = o.rounds ?? 6;
  // The references run on the base policy around the loop, half before and half after, so a
  // load that drifts during the run weighs on both sides alike.
  const [baseDir, datasetDir] = await runStage(spec, "curriculum", [], ["base", "dataset"]);
  const rig = await openReferences({ base: baseDir, dataset: datasetDir }, config, device);
  const before = await timeRounds(rig, 0, Math.ceil(rounds / 2));
  const [trainDir] = await runStage(spec, "train", ["--force"], [
    `train[method=${METHOD},seed=${SEED}]`,
  ]);
  const after = await timeRounds(rig, rounds, Math.max(1, Math.floor(rounds / 2)));
  await rig.release();
  const loop = loopFigures(await readRows(`${trainDir}/metrics.jsonl`));
  const ref = {
    generateTokensPerS: median([...before.generate, ...after.generate]),
    engineTokensPerS: median([...before.engine, ...after.engine]),
  };
  log(
    `bench train: ${loop.steps} steps measured; engine reference on ${rig.shapes.join(", ")}: ${
      round(median(before.engine), 0)
    } tokens/s before the run, ${round(median(after.engine), 0)} after; generate ${
      round(median(before.generate), 0)
    } before, ${round(median(after.generate), 0)} after`,
  );
  const vsEngine = loop.updateTokensPerS / ref.engineTokensPerS;
  const s = loop.shares;
  return [
    {
      name: "train.rollout_tokens_s",
      value: round(loop.rolloutTokensPerS, 1),
      unit: "tokens/s",
      reference: round(ref.generateTokensPerS, 1),
      ratio: round(loop.rolloutTokensPerS / ref.generateTokensPerS),
    },
    {
      name: "train.update_tokens_s",
      value: round(loop.updateTokensPerS, 1),
      unit: "tokens/s",
      reference: round(ref.engineTokensPerS, 1),
      ratio: round(vsEngine),
    },
    {
      name: "train.update_vs_engine",
      value: round(vsEngine),
      unit: "x",
      reference: round(ref.engineTokensPerS, 1),
      ratio: round(vsEngine),
      target: ">= 0.8",
    },
    { name: "train.share_generate", value: round(s.generate), unit: "share" },
    { name: "train.share_score", value: round(s.score), unit: "share" },
    { name: "train.share_update", value: round(s.update), unit: "share" },
    { name: "train.share_other", value: round(s.other), unit: "share", target: "<= 0.10" },
    { name: "train.step_s", value: round(loop.stepSeconds), unit: "s" },
    { name: "train.accuracy", value: round(loop.accuracy), unit: "share" },
  ];
}

/**
 * Run the training-loop benchmark on the tiny preset.
 *
 * @param opts `quick`: 4 rollout steps instead of 12, fewer reference rounds.
 * @returns The figures (see the module doc).
 */
export function run(opts: { quick: boolean }): Promise<BenchResult[]> {
  return benchTrain({ steps: opts.quick ? 4 : 12, rounds: opts.quick ? 2 : 6 });
}

function count(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) n++;
  return n;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  for (const r of await run({ quick })) console.log(JSON.stringify(r));
}
