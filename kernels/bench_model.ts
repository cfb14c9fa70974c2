/**
 * Model benchmark (`deno task bench model`): the policy's prefill, decode, generation, scoring
 * and training speed on the CPU EP, next to the machine's own MatMul rate; and, in the full run,
 * a model at the real scale of DeepSeek-R1-Distill-Qwen-1.5B.
 *
 * Tiny policy (the tiny preset's model): the character vocabulary, width 192, 4 layers, 4 query heads
 * sharing one key/value head, SwiGLU 512, context 128 (`tinyPolicyConfig`). Measured in one process with
 * the policy's default threads; every program is warmed up with ≥ 10 runs and timed by the
 * median of the timed runs (kernels/README.md §3):
 * - reference: ORT MatMul 512×512×512 (`model.matmul_gflops`) and the time of a trivial run
 *   (`model.run_overhead_ms`);
 * - prefill of 64 prompts × 48 tokens and one decode step at batch 64 and 256 against a cache of
 *   96 positions: time, executed FLOPs (`forwardFlops`, attention over every key slot) and the
 *   ratio of the achieved rate to the MatMul rate;
 * - `model.decode_b256_over_bound` = decode-step time at batch 256 ÷ (its FLOPs ÷ MatMul rate +
 *   run overhead); target ≤ 2.0. The reference and the model run in alternating rounds in one
 *   process, with ORT's thread spinning off (`compile`'s default: with it on, several sessions in
 *   one process slow the short MatMul runs most); `…_fastest` divides the fastest runs of each;
 * - generation tokens/s (`generate`, 40-token prompts, 64 new tokens, no EOS) at batch 64 and 256;
 * - scoring tokens/s (64 × 128 tokens) and train-step tokens/s (SFT loss + backward + AdamW,
 *   32 × 64 tokens, as the warm-up stage runs it).
 *
 * Real scale (full run only): writes a randomly initialised bf16 checkpoint with the exact
 * architecture of DeepSeek-R1-Distill-Qwen-1.5B (≈ 3.5 GB, streamed tensor by tensor) under
 * `.sent/tmp/`, loads it (`model.real_load_s`), runs a 128-token prefill and 32 decode steps at
 * batch 4 (`model.real_decode_tokens_s`), reports the process's peak resident memory
 * (`model.real_peak_rss_gb`; target ≤ 2.5 × the fp32 weights), and deletes the checkpoint. The
 * peak is the process's maximum resident set size from getrusage, kept by the kernel, so a
 * short spike while ORT holds the JS thread is counted too.
 *
 * Real-scale scoring (full run only, in a child process of its own so that no other part's peak
 * counts): random float32 weights of the same architecture in memory, one micro-batch of
 * 4 × 2048 tokens through `Policy.score` with its defaults (the head in chunks of positions,
 * kernels/_chunk_head.ts; a row at a time, `scoreRowsPerRun`; each layer's attention in 16
 * blocks of 128 queries, `scoreQueryBlocks`): `model.real_score_peak_rss_gb` (target ≤ 1.2 × the
 * fp32 weights; measured 7.96 GB = 1.12 × the 7.11 GB, against 8.64 GB = 1.215 × with whole
 * attention, whose [12, 2048, 2048] scores, softmax and bias took about 0.5 GB a layer) and
 * `model.real_score_s` (157 s on the 2-core CPU). Alone:
 * `deno run -P=pipeline kernels/bench_model.ts real-score`.
 *
 * @example
 * ```ts
 * import { run } from "./bench_model.ts";
 * const results = await run({ quick: true });
 * console.log(results.find((r) => r.name === "model.decode_b256_over_bound"));
 * ```
 *
 * @module
 */

import process from "node:process";
import type { BenchResult } from "../pipeline/bench_types.ts";
import { tinyAimeTokenizer } from "../data/tokenizer_char.ts";
import { GraphBuilder } from "./builder.ts";
import { counterBits, streamKey } from "./counter_rng.ts";
import {
  initWeights,
  type KvArrays,
  padBatch,
  Policy,
  policyTrainStep,
  trainerFor,
} from "./policy.ts";
import { generate } from "./sampling.ts";
import { compile, HostTensor, hostTensor } from "./session.ts";
import { saveCheckpoint } from "./checkpoint.ts";
import {
  forwardFlops,
  nextTokenLoss,
  parameterCount,
  parameterShapes,
  type Qwen2Config,
  qwen2ConfigFromHF,
  qwen2ConfigToHF,
  tinyPolicyConfig,
} from "./transformer.ts";
import { DEEPSEEK_R1_DISTILL_QWEN_1_5B } from "./known_models.ts";

/** Options of `run`. */
export interface ModelBenchOptions {
  /** Fewer timed runs, and no real-scale part. */
  quick: boolean;
}

const WARMUP = 10;

export { DEEPSEEK_R1_DISTILL_QWEN_1_5B };

/**
 * Run the suite.
 *
 * @param opts `quick`: fewer runs, no real-scale part.
 * @returns The measured figures.
 */
export async function run(opts: ModelBenchOptions): Promise<BenchResult[]> {
  const runs = opts.quick ? 5 : 20;
  const results: BenchResult[] = [];
  const add = (r: BenchResult) => results.push({ ...r, value: round(r.value) });

  const config = tinyPolicyConfig(tinyAimeTokenizer().vocabSize);
  const policy = Policy.create(config, initWeights(config, { seed: 1 }));
  add({ name: "model.tiny_params", value: parameterCount(config), unit: "parameters" });

  // ----- reference, prefill and decode, interleaved ----------------------------------------------
  // The machine is shared: timing the reference and the model in alternating rounds lets the
  // load of the moment hit both alike, so their ratios mean something.
  const ref = await referencePrograms();
  const batch = padBatch(randomPrompts(config, 64, 48, "prefill"), { padId: 0 });
  const slots = 96;
  const steps = { 64: decodeStep(config, 64, slots), 256: decodeStep(config, 256, slots) };
  const timed = await interleaved(
    {
      matmul: ref.matmul,
      overhead: ref.overhead,
      prefill: () => policy.prefill(batch),
      decode64: () => policy.decode(steps[64]),
      decode256: () => policy.decode(steps[256]),
    },
    opts.quick ? 3 : 8,
    5,
  );
  await ref.release();
  const ms = timed.median;
  const matmul = ref.flops / (ms.matmul * 1e6);
  add({ name: "model.matmul_gflops", value: matmul, unit: "GFLOP/s" });
  add({ name: "model.run_overhead_ms", value: ms.overhead, unit: "ms" });
  const prefillFlops = forwardFlops(config, { tokens: 64 * 48, keys: 48, logitRows: 64 });
  addRate(add, "model.prefill_b64x48", ms.prefill, prefillFlops, matmul);
  for (const B of [64, 256] as const) {
    const flops = forwardFlops(config, { tokens: B, keys: slots + 1, logitRows: B });
    const stepMs = B === 64 ? ms.decode64 : ms.decode256;
    addRate(add, `model.decode_b${B}`, stepMs, flops, matmul);
    add({ name: `model.decode_b${B}_tokens_s`, value: B / (stepMs / 1000), unit: "tokens/s" });
    if (B === 256) {
      const bound = flops / (matmul * 1e6) + ms.overhead;
      add({ name: "model.decode_b256_bound_ms", value: bound, unit: "ms" });
      add({
        name: "model.decode_b256_over_bound",
        value: stepMs / bound,
        unit: "×",
        target: "≤ 2.0",
      });
      // The same ratio from the fastest run of each program: the machine's quiet moments.
      const best = timed.min;
      const bestBound = (flops * best.matmul) / ref.flops + best.overhead;
      add({
        name: "model.decode_b256_over_bound_fastest",
        value: best.decode256 / bestBound,
        unit: "×",
      });
    }
  }

  // ----- generation ------------------------------------------------------------------------------
  for (const B of [64, 256]) {
    const requests = randomPrompts(config, B, 40, `gen${B}`).map((prompt, i) => ({
      prompt,
      problem: i,
      sample: 0,
    }));
    const options = { seed: 1, maxNewTokens: 64, padId: 0, eosId: -1, batchSize: B };
    await generate(policy, requests.slice(0, 8), { ...options, maxNewTokens: 8 }); // warm-up
    const t0 = performance.now();
    const out = await generate(policy, requests, options);
    const seconds = (performance.now() - t0) / 1000;
    const tokens = out.reduce((a, c) => a + c.tokens.length, 0);
    add({ name: `model.generate_b${B}_tokens_s`, value: tokens / seconds, unit: "tokens/s" });
  }

  // ----- scoring and training --------------------------------------------------------------------
  const scoreBatch = padBatch(randomPrompts(config, 64, 128, "score"), { padId: 0 });
  const scoreMs = await median(() => policy.score(scoreBatch), runs);
  add({ name: "model.score_tokens_s", value: (64 * 128) / (scoreMs / 1000), unit: "tokens/s" });
  const scoreFlops = forwardFlops(config, { tokens: 64 * 128, keys: 128, logitRows: 64 * 127 });
  add({
    name: "model.score_gflops",
    value: scoreFlops / (scoreMs * 1e6),
    unit: "GFLOP/s",
    reference: round(matmul),
    ratio: round(scoreFlops / (scoreMs * 1e6) / matmul),
  });
  await policy.release();

  const train = await trainStepRate(config, policy, runs);
  add({ name: "model.train_step_ms", value: train.ms, unit: "ms" });
  add({ name: "model.train_tokens_s", value: train.tokens / (train.ms / 1000), unit: "tokens/s" });
  add({
    name: "model.train_gflops",
    value: train.flops / (train.ms * 1e6),
    unit: "GFLOP/s",
    reference: round(matmul),
    ratio: round(train.flops / (train.ms * 1e6) / matmul),
  });

  if (!opts.quick) {
    for (const r of await realScale()) add(r);
    for (const r of await realScoreInChild()) add(r);
  }
  return results;
}

// ----- pieces -------------------------------------------------------------------------------------

function round(x: number): number {
  return Number(x.toPrecision(4));
}

/** Median wall time of `fn` over `runs` calls after `WARMUP` untimed ones, in ms. */
async function median(fn: () => Promise<unknown>, runs: number): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

function addRate(
  add: (r: BenchResult) => void,
  name: string,
  ms: number,
  flops: number,
  matmul: number,
): void {
  const gflops = flops / (ms * 1e6);
  add({ name: `${name}_ms`, value: ms, unit: "ms" });
  add({ name: `${name}_mflop`, value: flops / 1e6, unit: "MFLOP" });
  add({
    name: `${name}_gflops`,
    value: gflops,
    unit: "GFLOP/s",
    reference: round(matmul),
    ratio: round(gflops / matmul),
  });
}

/**
 * Warm every task up, then time `perRound` runs of each (after two untimed ones), task after
 * task, for `rounds` rounds.
 *
 * @returns The median and the fastest time of each task in ms.
 */
async function interleaved<K extends string>(
  tasks: Record<K, () => Promise<unknown>>,
  rounds: number,
  perRound: number,
): Promise<{ median: Record<K, number>; min: Record<K, number> }> {
  const names = Object.keys(tasks) as K[];
  const times = new Map<K, number[]>(names.map((k) => [k, []]));
  for (const k of names) for (let i = 0; i < WARMUP; i++) await tasks[k]();
  for (let r = 0; r < rounds; r++) {
    for (const k of names) {
      // Two untimed runs after switching programs: caches and the thread pool settle again.
      for (let i = 0; i < 2; i++) await tasks[k]();
      for (let i = 0; i < perRound; i++) {
        const t0 = performance.now();
        await tasks[k]();
        times.get(k)!.push(performance.now() - t0);
      }
    }
  }
  const median = {} as Record<K, number>;
  const min = {} as Record<K, number>;
  for (const k of names) {
    const t = times.get(k)!.sort((a, b) => a - b);
    median[k] = t[Math.floor(t.length / 2)];
    min[k] = t[0];
  }
  return { median, min };
}

/** ORT MatMul 512³ and a one-node run, compiled with the default threads (as the policy). */
async function referencePrograms() {
  const n = 512;
  const mm = new GraphBuilder("matmul_512");
  mm.output(mm.matmul(mm.input("a", "float32", [n, n]), mm.input("b", "float32", [n, n])), "y");
  const key = streamKey("bench-model", "matmul");
  const data = Float32Array.from({ length: n * n }, (_, i) => counterBits(key, i) / 2 ** 32 - 0.5);
  const a = hostTensor("float32", [n, n], data);
  const matmul = await compile(mm.build());
  const tiny = new GraphBuilder("one_add");
  const x = tiny.input("x", "float32", [1]);
  tiny.output(tiny.add(x, x), "y");
  const one = await compile(tiny.build());
  const xs = hostTensor("float32", [1], [1]);
  return {
    flops: 2 * n ** 3,
    matmul: () => matmul.run({ a, b: a }),
    overhead: () => one.run({ x: xs }),
    release: async () => {
      await matmul.release();
      await one.release();
    },
  };
}

/** Deterministic prompts of real (non-special) token ids. */
function randomPrompts(config: Qwen2Config, count: number, length: number, label: string) {
  const key = streamKey("bench-model", label);
  return Array.from(
    { length: count },
    (_, r) =>
      Array.from(
        { length },
        (_, t) => 3 + (counterBits(key, r * length + t) % (config.vocabSize - 3)),
      ),
  );
}

/** A decode step against a full slot cache of random keys and values. */
function decodeStep(config: Qwen2Config, batch: number, slots: number) {
  const { numLayers: L, numKvHeads: K, headDim: E } = config;
  const key = streamKey("bench-model", "cache");
  const fill = (n: number, salt: number) =>
    Float32Array.from({ length: n }, (_, i) => counterBits(key, i, salt) / 2 ** 32 - 0.5);
  const cache: KvArrays = {
    keys: Array.from({ length: L }, (_, l) => fill(batch * K * slots * E, 2 * l)),
    values: Array.from({ length: L }, (_, l) => fill(batch * K * slots * E, 2 * l + 1)),
    length: slots,
  };
  return {
    batch,
    slots,
    ids: Int32Array.from({ length: batch }, (_, r) => 3 + (r % 20)),
    positions: new Int32Array(batch).fill(slots),
    slotMask: new Int32Array(batch * slots).fill(1),
    cache,
  };
}

/** One SFT train step (forward, backward, AdamW) on 32 × 64 tokens. */
async function trainStepRate(config: Qwen2Config, policy: Policy, runs: number) {
  const [B, T] = [32, 64];
  const batch = padBatch(randomPrompts(config, B, T, "train"), { padId: 0 });
  const dims = [B, T];
  const data = {
    input_ids: new HostTensor("int32", dims, batch.ids),
    attention_mask: new HostTensor("int32", dims, batch.mask),
    position_ids: new HostTensor("int32", dims, batch.positions),
    loss_mask: new HostTensor("float32", dims, new Float32Array(B * T).fill(1)),
  };
  const trainer = await trainerFor(policy, policyTrainStep(config, nextTokenLoss));
  const ms = await median(() => trainer.step(data, { lr: 1e-4 }), Math.max(5, runs / 2));
  await trainer.release();
  // Forward + backward ≈ 3 × the forward's matrix FLOPs.
  const flops = 3 * forwardFlops(config, { tokens: B * T, keys: T, logitRows: B * (T - 1) });
  return { ms, tokens: B * T, flops };
}

// ----- real scale ---------------------------------------------------------------------------------

/** Peak resident memory of this process in GB: getrusage's ru_maxrss, kept by the kernel. */
function peakRssGb(): number {
  return (process.resourceUsage().maxRSS * 1024) / 1e9;
}

/**
 * Uniform weights in [−a, a] with a = 0.02·√3 (std 0.02, HF's initializer range), from a
 * xorshift32 stream per tensor: fast enough to fill 1.8 billion values in seconds.
 */
function uniformWeights(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const a = 0.02 * Math.sqrt(3);
  let s = (seed * 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 * 2 - 1) * a;
  }
  return out;
}

/**
 * The real-scale part alone: write, load and run a random DeepSeek-R1-Distill-Qwen-1.5B-shaped
 * bf16 checkpoint, then delete it.
 *
 * @returns Write and load times, prefill time, decode tokens/s and peak memory.
 */
export async function realScale(): Promise<BenchResult[]> {
  const config = qwen2ConfigFromHF(DEEPSEEK_R1_DISTILL_QWEN_1_5B);
  const dir = `.sent/tmp/bench-real-${Deno.pid}`;
  const results: BenchResult[] = [];
  const fp32Gb = (parameterCount(config) * 4) / 1e9;
  try {
    const t0 = performance.now();
    const tensors = new Map(
      [...parameterShapes(config)].map(([name, dims], k) => [name, {
        dtype: "float32" as const,
        dims,
        data: () =>
          name.endsWith("norm.weight")
            ? new Float32Array(dims[0]).fill(1)
            : uniformWeights(dims.reduce((a, d) => a * d, 1), k + 1),
      }]),
    );
    const hf = qwen2ConfigToHF(config, {
      ...DEEPSEEK_R1_DISTILL_QWEN_1_5B,
      torch_dtype: "bfloat16",
    });
    await saveCheckpoint(dir, hf, tensors, { float32As: "BF16" });
    results.push({ name: "model.real_write_s", value: (performance.now() - t0) / 1000, unit: "s" });

    const t1 = performance.now();
    const policy = await Policy.load(dir);
    results.push({ name: "model.real_load_s", value: (performance.now() - t1) / 1000, unit: "s" });

    const prompts = randomPrompts(config, 4, 128, "real");
    const requests = prompts.map((prompt, i) => ({ prompt, problem: i, sample: 0 }));
    const t2 = performance.now();
    const out = await generate(policy, requests, {
      seed: 1,
      maxNewTokens: 33,
      padId: 0,
      eosId: -1,
    });
    const totalS = (performance.now() - t2) / 1000;
    // Split prefill from decode with a second, prefill-only pass (first token = prefill).
    const t3 = performance.now();
    await generate(policy, requests, { seed: 1, maxNewTokens: 1, padId: 0, eosId: -1 });
    const prefillS = (performance.now() - t3) / 1000;
    const decoded = out.reduce((a, c) => a + c.tokens.length - 1, 0);
    results.push({ name: "model.real_prefill_b4x128_s", value: prefillS, unit: "s" });
    results.push({
      name: "model.real_decode_tokens_s",
      value: decoded / Math.max(totalS - prefillS, 1e-9),
      unit: "tokens/s",
    });
    await policy.release();
    const peak = peakRssGb();
    results.push({
      name: "model.real_peak_rss_gb",
      value: peak,
      unit: "GB (peak RSS of the process, getrusage)",
      reference: round(fp32Gb),
      ratio: round(peak / fp32Gb),
      target: "≤ 2.5 × fp32 weights",
    });
    results.push({ name: "model.real_fp32_weights_gb", value: fp32Gb, unit: "GB" });
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return results;
}

// ----- real-scale scoring -------------------------------------------------------------------------

/**
 * Score one micro-batch of 4 × 2048 tokens with a random DeepSeek-R1-Distill-Qwen-1.5B-shaped
 * policy held in memory, and report this process's peak RSS against the fp32 weights.
 *
 * @returns Peak RSS, seconds, chunk count.
 */
export async function realScore(): Promise<BenchResult[]> {
  const config = qwen2ConfigFromHF(DEEPSEEK_R1_DISTILL_QWEN_1_5B);
  const fp32Gb = (parameterCount(config) * 4) / 1e9;
  const weights = new Map(
    [...parameterShapes(config)].map(([name, dims], k) => [
      name,
      name.endsWith("norm.weight")
        ? new Float32Array(dims[0]).fill(1)
        : uniformWeights(dims.reduce((a, d) => a * d, 1), k + 1),
    ]),
  );
  const policy = Policy.create(config, weights);
  const [B, T] = [4, 2048];
  const batch = padBatch(randomPrompts(config, B, T, "real-score"), { padId: 0 });
  const t0 = performance.now();
  const scores = await policy.score(batch);
  const seconds = (performance.now() - t0) / 1000;
  await policy.release();
  if (!scores.logprobs.every(Number.isFinite) || !scores.entropy.every(Number.isFinite)) {
    throw new Error("real-scale scoring: non-finite log-probs or entropies");
  }
  const peak = peakRssGb();
  return [
    {
      name: "model.real_score_peak_rss_gb",
      value: peak,
      unit: "GB (peak RSS of a process that only makes the weights and scores 4 × 2048 tokens)",
      reference: round(fp32Gb),
      ratio: round(peak / fp32Gb),
      target: "≤ 1.2 × fp32 weights",
    },
    { name: "model.real_score_s", value: seconds, unit: "s (one micro-batch of 4 × 2048)" },
  ];
}

/** {@link realScore} in a child Deno (needs --allow-run), so the peak is its own. */
async function realScoreInChild(): Promise<BenchResult[]> {
  const root = new URL("../", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=pipeline", "kernels/bench_model.ts", "real-score"],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (out.code !== 0) {
    throw new Error(
      `model.real_score_peak_rss_gb: the child process exited ${out.code}: ` +
        new TextDecoder().decode(out.stderr).trim().split("\n").at(-1),
    );
  }
  return JSON.parse(text) as BenchResult[];
}

if (import.meta.main && Deno.args[0] === "real-score") {
  console.log(JSON.stringify(await realScore()));
}
