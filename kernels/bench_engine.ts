/**
 * Engine benchmark (`deno task bench engine`): how close forward, backward and the optimizer
 * step get to the machine's own MatMul speed on the CPU EP.
 *
 * Measured in one process, on the CPU EP with 2 intra-op threads. Every program is warmed up
 * with ≥ 10 runs (the first runs of a session are 3–4× slower, kernels/README.md §3); then
 * the programs of one measurement run in interleaved rounds and each reports its median, so
 * that the load of the shared machine hits them alike:
 * - the reference: ORT MatMul N×N×N at N = 512, 1024, 2048 (GFLOP/s = 2N³ / time). Each model's
 *   rounds also run a 1024 MatMul; the reference of a model's ratios is the best MatMul rate
 *   seen so far (a conservative choice: a faster reference lowers the ratios);
 * - an MLP (4096 rows, D → 4D → D, tanh) and one Qwen2 decoder layer from `transformer.ts`
 *   (RMSNorm, RoPE, 4 heads, SwiGLU 8/3·D, causal, 32 × 128 = 4096 tokens) at width D = 256 and
 *   512: forward, forward+backward (`grad`, gradients as outputs), the AdamW update alone, and
 *   the whole train step (forward + backward + AdamW in one graph); achieved GFLOP/s and its
 *   ratio to the reference. FLOPs are the forward MatMul FLOPs, and 3× that for
 *   forward+backward (the usual count: each backward MatMul pair costs twice the forward one).
 *
 * Named targets (block, width 512, CPU EP): `engine.fwd_bwd_over_fwd` ≤ 3.2 and
 * `engine.fwd_bwd_vs_gemm` ≥ 0.5.
 *
 * @example
 * ```ts
 * import { run } from "./bench_engine.ts";
 * const results = await run({ quick: true });
 * console.log(results.find((r) => r.name === "engine.fwd_bwd_over_fwd"));
 * ```
 *
 * @module
 */

import type { BenchResult } from "../pipeline/bench_types.ts";
import { adamwGraph, gradName, momentName } from "./adamw.ts";
import { grad } from "./autodiff.ts";
import { GraphBuilder } from "./builder.ts";
import type { Graph } from "./ir.ts";
import { compile, type HostTensor, hostTensor, type Program, zerosTensor } from "./session.ts";
import { buildTrainStep } from "./train_step.ts";
import {
  declareWeights,
  decoder,
  forwardFlops,
  parameterShapes,
  qwen2ConfigFromHF,
} from "./transformer.ts";
import {
  initToyParams,
  mlpModel,
  normalStream,
  randomNormal,
  type ToyModel,
  type ToyParam,
} from "./_toy_models.ts";

/** Options of `run`. */
export interface EngineBenchOptions {
  /** Fewer timed runs (warm-up stays ≥ 10). */
  quick: boolean;
}

const THREADS = 2;
const WARMUP = 10;
const TOKENS = { batch: 32, seq: 128 };
const HEADS = 4;

/** SwiGLU hidden width: 8/3·D rounded up to a multiple of 64 (1408 at D = 512). */
function swigluHidden(width: number): number {
  return Math.ceil((8 / 3) * width / 64) * 64;
}

/** A model to measure: a loss graph, its parameters, its data feeds and its forward FLOPs. */
interface BenchModel {
  readonly graph: Graph;
  readonly params: readonly ToyParam[];
  readonly data: Readonly<Record<string, HostTensor>>;
  readonly forwardFlops: number;
}

function fromToy(model: ToyModel): BenchModel {
  const next = normalStream(4);
  const data = Object.fromEntries(
    model.data.map((d) => [d.name, hostTensor("float32", d.shape, randomNormal(d.shape, next))]),
  );
  return { graph: model.graph, params: model.params, data, forwardFlops: model.forwardFlops };
}

/**
 * One Qwen2 decoder layer from `transformer.ts` (RMSNorm, RoPE, q/k/v biases, causal attention,
 * SwiGLU), built through its `decoder()` with a 64-token vocabulary (the embedding lookup and
 * the final norm around the layer cost next to nothing), and `loss = mean(hidden ⊙ r)`. Only the
 * layer's weights are parameters.
 */
function qwen2BlockModel(width: number): BenchModel {
  const { batch: B, seq: T } = TOKENS;
  const vocab = 64;
  const config = qwen2ConfigFromHF({
    vocab_size: vocab,
    hidden_size: width,
    intermediate_size: swigluHidden(width),
    num_hidden_layers: 1,
    num_attention_heads: HEADS,
    num_key_value_heads: HEADS,
    max_position_embeddings: T,
    tie_word_embeddings: true,
  });
  const b = new GraphBuilder(`qwen2_block_${width}`);
  const ids = b.input("input_ids", "int32", [B, T]);
  const mask = b.input("attention_mask", "int32", [B, T]);
  const positions = b.input("position_ids", "int32", [B, T]);
  const r = b.input("r", "float32", [B, T, width]); //               [B,T,D]
  const weights = declareWeights(b, config);
  const { hidden } = decoder(b, config, weights, { ids, mask, positions }, "none"); // [B,T,D]
  b.output(b.reduceMean(b.mul(hidden, r), [0, 1, 2], false), "loss");

  const next = normalStream(4);
  const params: ToyParam[] = [];
  const data: Record<string, HostTensor> = {
    input_ids: hostTensor(
      "int32",
      [B, T],
      Array.from({ length: B * T }, (_, i) => (i * 7) % vocab),
    ),
    attention_mask: hostTensor("int32", [B, T], new Array(B * T).fill(1)),
    position_ids: hostTensor("int32", [B, T], Array.from({ length: B * T }, (_, i) => i % T)),
    r: hostTensor("float32", [B, T, width], randomNormal([B, T, width], next)),
  };
  for (const [name, shape] of parameterShapes(config)) {
    const isNorm = name.endsWith("norm.weight");
    const isBias = name.endsWith(".bias");
    if (name.startsWith("model.layers.0.")) {
      const init = isNorm ? "ones" : isBias ? "zeros" : 1 / Math.sqrt(shape.at(-1)!);
      params.push({ name, shape, init, decay: !isNorm && !isBias });
    } else {
      // Fixed weights around the layer: embedding and final norm.
      data[name] = hostTensor(
        "float32",
        shape,
        isNorm ? new Float32Array(width).fill(1) : randomNormal(shape, next),
      );
    }
  }
  const flops = forwardFlops(config, { tokens: B * T, keys: T, logitRows: 0 });
  return { graph: b.build(), params, data, forwardFlops: flops };
}

/** A compiled program and the feeds it is timed with. */
interface Timed {
  readonly program: Program;
  readonly feeds: Record<string, HostTensor>;
}

/**
 * Median wall time of each program, in milliseconds: every program is warmed up with `WARMUP`
 * runs, then `rounds` rounds each run every program once. Interleaving puts the programs under
 * the same machine load (the machine is shared), so their ratios are steadier than separate runs.
 */
async function timeInterleaved(programs: readonly Timed[], rounds: number): Promise<number[]> {
  for (const { program, feeds } of programs) {
    for (let i = 0; i < WARMUP; i++) await program.run(feeds);
  }
  const times = programs.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, { program, feeds }] of programs.entries()) {
      const t0 = performance.now();
      await program.run(feeds);
      times[i].push(performance.now() - t0);
    }
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]);
}

async function timed(graph: Graph, feeds: Record<string, HostTensor>): Promise<Timed> {
  return { program: await compile(graph, { device: "cpu", threads: THREADS }), feeds };
}

async function releaseAll(programs: readonly Timed[]): Promise<void> {
  for (const { program } of programs) await program.release();
}

/** Y = A·B, N×N×N, with random inputs. */
function matmulCase(n: number, seed: number): { graph: Graph; feeds: Record<string, HostTensor> } {
  const b = new GraphBuilder(`matmul_${n}`);
  b.output(b.matmul(b.input("a", "float32", [n, n]), b.input("b", "float32", [n, n])), "y");
  const next = normalStream(seed);
  return {
    graph: b.build(),
    feeds: {
      a: hostTensor("float32", [n, n], randomNormal([n, n], next)),
      b: hostTensor("float32", [n, n], randomNormal([n, n], next)),
    },
  };
}

const gflopsOf = (flops: number, ms: number) => flops / (ms * 1e6);

/** The same graph with only the named outputs kept. */
function onlyOutputs(graph: Graph, names: readonly string[]): Graph {
  return { ...graph, outputs: graph.outputs.filter((v) => names.includes(v.name)) };
}

async function matmulReference(quick: boolean): Promise<{ results: BenchResult[]; best: number }> {
  const sizes = [512, 1024, 2048];
  const programs: Timed[] = [];
  for (const n of sizes) {
    const c = matmulCase(n, n);
    programs.push(await timed(c.graph, c.feeds));
  }
  const ms = await timeInterleaved(programs, quick ? 5 : 20);
  await releaseAll(programs);
  const gflops = sizes.map((n, i) => gflopsOf(2 * n ** 3, ms[i]));
  return {
    results: sizes.map((n, i) => ({
      name: `engine.matmul_${n}.gflops`,
      value: round(gflops[i]),
      unit: "GFLOP/s",
    })),
    best: Math.max(...gflops),
  };
}

/** Figures of one model at one width. */
interface ModelFigures {
  fwdMs: number;
  fwdBwdMs: number;
  /** The MatMul reference the ratios used. */
  reference: number;
  results: BenchResult[];
}

async function measureModel(
  label: string,
  model: BenchModel,
  reference: number,
  quick: boolean,
): Promise<ModelFigures> {
  const names = model.params.map((p) => p.name);
  const init = initToyParams(model.params, 3);
  const feeds: Record<string, HostTensor> = { ...model.data };
  for (const p of model.params) feeds[p.name] = hostTensor("float32", p.shape, init.get(p.name)!);
  const next = normalStream(5);

  const backward = grad(onlyOutputs(model.graph, ["loss"]), "loss", names);
  const { graph: update } = adamwGraph(
    model.params.map((p) => ({ name: p.name, shape: p.shape, decay: p.decay })),
  );
  const optFeeds: Record<string, HostTensor> = {
    lr: hostTensor("float32", [], [1e-3]),
    step: hostTensor("float32", [], [1]),
  };
  for (const p of model.params) {
    optFeeds[p.name] = feeds[p.name];
    optFeeds[gradName(p.name)] = hostTensor("float32", p.shape, randomNormal(p.shape, next, 1e-3));
    optFeeds[momentName(p.name, "m")] = zerosTensor("float32", p.shape);
    optFeeds[momentName(p.name, "v")] = zerosTensor("float32", p.shape);
  }
  const step = buildTrainStep(model.graph, {
    params: model.params.map((p) => ({ name: p.name, decay: p.decay })),
  });
  const stepFeeds: Record<string, HostTensor> = { ...feeds, lr: optFeeds.lr, step: optFeeds.step };
  for (const p of model.params) {
    stepFeeds[momentName(p.name, "m")] = optFeeds[momentName(p.name, "m")];
    stepFeeds[momentName(p.name, "v")] = optFeeds[momentName(p.name, "v")];
  }
  const gemm = matmulCase(1024, 7);
  const programs = [
    await timed(onlyOutputs(model.graph, ["loss"]), feeds),
    await timed(backward, feeds),
    await timed(update, optFeeds),
    await timed(step.graph, stepFeeds),
    await timed(gemm.graph, gemm.feeds),
  ];
  const [fwdMs, fwdBwdMs, adamwMs, stepMs, gemmMs] = await timeInterleaved(
    programs,
    quick ? 5 : 15,
  );
  await releaseAll(programs);
  // The MatMul rate in the same rounds: the reference when it beats the separate measurement.
  reference = Math.max(reference, gflopsOf(2 * 1024 ** 3, gemmMs));

  const fwdGflops = gflopsOf(model.forwardFlops, fwdMs);
  const fwdBwdGflops = gflopsOf(3 * model.forwardFlops, fwdBwdMs);
  const r = (name: string, value: number, unit: string): BenchResult => ({
    name: `engine.${label}.${name}`,
    value: round(value),
    unit,
  });
  const vsGemm = (name: string, gflops: number): BenchResult => ({
    ...r(name, gflops, "GFLOP/s"),
    reference: round(reference),
    ratio: round(gflops / reference),
  });
  return {
    fwdMs,
    fwdBwdMs,
    reference,
    results: [
      r("fwd_ms", fwdMs, "ms"),
      r("fwd_bwd_ms", fwdBwdMs, "ms"),
      r("adamw_ms", adamwMs, "ms"),
      r("train_step_ms", stepMs, "ms"),
      vsGemm("fwd_gflops", fwdGflops),
      vsGemm("fwd_bwd_gflops", fwdBwdGflops),
      r("fwd_bwd_over_fwd", fwdBwdMs / fwdMs, "x"),
      r("gemm_1024_gflops", gflopsOf(2 * 1024 ** 3, gemmMs), "GFLOP/s"),
    ],
  };
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Run the engine benchmark.
 *
 * @param opts `quick` shortens the timed runs.
 * @returns The figures, the two named targets last.
 */
export async function run(opts: EngineBenchOptions): Promise<BenchResult[]> {
  const { results, best } = await matmulReference(opts.quick);
  results.push({ name: "engine.matmul_reference.gflops", value: round(best), unit: "GFLOP/s" });
  let target: (ModelFigures & { flops: number }) | undefined;
  for (const width of [256, 512]) {
    const mlp = mlpModel({
      rows: TOKENS.batch * TOKENS.seq,
      inputs: width,
      hidden: 4 * width,
      outputs: width,
    });
    results.push(...(await measureModel(`mlp_${width}`, fromToy(mlp), best, opts.quick)).results);
    const model = qwen2BlockModel(width);
    const figures = await measureModel(`block_${width}`, model, best, opts.quick);
    results.push(...figures.results);
    if (width === 512) target = { ...figures, flops: model.forwardFlops };
  }
  const achieved = gflopsOf(3 * target!.flops, target!.fwdBwdMs);
  results.push(
    {
      name: "engine.fwd_bwd_over_fwd",
      value: round(target!.fwdBwdMs / target!.fwdMs),
      unit: "x",
      target: "<= 3.2",
    },
    {
      name: "engine.fwd_bwd_vs_gemm",
      value: round(achieved / target!.reference),
      unit: "x",
      reference: round(target!.reference),
      ratio: round(achieved / target!.reference),
      target: ">= 0.5",
    },
  );
  return results;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  for (const r of await run({ quick })) console.log(JSON.stringify(r));
}
