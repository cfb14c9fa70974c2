/**
 * Engine benchmark (`deno task bench engine`): how close forward, backward and the optimizer
 * step get to the machine's own MatMul speed on the CPU EP.
 *
 * Measured in one process, 2 intra-op threads, each program warmed up with ≥ 10 runs before the
 * timed runs (the first runs of a session are 3–4× slower, onnxruntime-notes.md §3), median time:
 * - the reference: ORT MatMul N×N×N at N = 512, 1024, 2048 (GFLOP/s = 2N³ / time); the best of
 *   the three is the machine's reference;
 * - an MLP (4096 rows, D → 4D → D, tanh) and a pre-norm transformer block (4 heads, SwiGLU,
 *   32 × 128 = 4096 tokens, causal) at width D = 256 and 512: forward, forward+backward
 *   (`grad`, gradients as outputs), the AdamW update alone, and the whole train step; achieved
 *   GFLOP/s and its ratio to the reference. FLOPs are the forward MatMul FLOPs, and 3× that for
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
  attentionBlockModel,
  initToyParams,
  mlpModel,
  normalStream,
  randomNormal,
  type ToyModel,
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

/** Median wall time of `runs` calls after `WARMUP` untimed ones, in milliseconds. */
async function timeRuns(
  program: Program,
  feeds: Record<string, HostTensor>,
  runs: number,
): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await program.run(feeds);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await program.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function timeGraph(
  graph: Graph,
  feeds: Record<string, HostTensor>,
  runs: number,
): Promise<number> {
  const program = await compile(graph, { device: "cpu", threads: THREADS });
  try {
    return await timeRuns(program, feeds, runs);
  } finally {
    await program.release();
  }
}

/** The same graph with only the named outputs kept. */
function onlyOutputs(graph: Graph, names: readonly string[]): Graph {
  return { ...graph, outputs: graph.outputs.filter((v) => names.includes(v.name)) };
}

async function matmulReference(quick: boolean): Promise<{ results: BenchResult[]; best: number }> {
  const results: BenchResult[] = [];
  let best = 0;
  const next = normalStream(1);
  for (const n of [512, 1024, 2048]) {
    const b = new GraphBuilder(`matmul_${n}`);
    b.output(b.matmul(b.input("a", "float32", [n, n]), b.input("b", "float32", [n, n])), "y");
    const feeds = {
      a: hostTensor("float32", [n, n], randomNormal([n, n], next)),
      b: hostTensor("float32", [n, n], randomNormal([n, n], next)),
    };
    const ms = await timeGraph(b.build(), feeds, quick ? 5 : 20);
    const gflops = (2 * n ** 3) / (ms * 1e6);
    best = Math.max(best, gflops);
    results.push({ name: `engine.matmul_${n}.gflops`, value: round(gflops), unit: "GFLOP/s" });
  }
  return { results, best };
}

/** Figures of one model at one width. */
interface ModelFigures {
  fwdMs: number;
  fwdBwdMs: number;
  adamwMs: number;
  stepMs: number;
  results: BenchResult[];
}

async function measureModel(
  label: string,
  model: ToyModel,
  reference: number,
  quick: boolean,
): Promise<ModelFigures> {
  const runs = quick ? 5 : 15;
  const names = model.params.map((p) => p.name);
  const init = initToyParams(model.params, 3);
  const feeds: Record<string, HostTensor> = {};
  for (const p of model.params) feeds[p.name] = hostTensor("float32", p.shape, init.get(p.name)!);
  const next = normalStream(4);
  for (const d of model.data) {
    feeds[d.name] = hostTensor("float32", d.shape, randomNormal(d.shape, next));
  }

  const fwdMs = await timeGraph(onlyOutputs(model.graph, ["loss"]), feeds, runs);
  const backward = grad(onlyOutputs(model.graph, ["loss"]), "loss", names);
  const fwdBwdMs = await timeGraph(backward, feeds, runs);

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
  const adamwMs = await timeGraph(update, optFeeds, runs);

  const step = buildTrainStep(model.graph, {
    params: model.params.map((p) => ({ name: p.name, decay: p.decay })),
  });
  const stepFeeds: Record<string, HostTensor> = { ...feeds, lr: optFeeds.lr, step: optFeeds.step };
  for (const p of model.params) {
    stepFeeds[momentName(p.name, "m")] = optFeeds[momentName(p.name, "m")];
    stepFeeds[momentName(p.name, "v")] = optFeeds[momentName(p.name, "v")];
  }
  const stepMs = await timeGraph(step.graph, stepFeeds, runs);

  const fwdGflops = model.forwardFlops / (fwdMs * 1e6);
  const fwdBwdGflops = (3 * model.forwardFlops) / (fwdBwdMs * 1e6);
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
    adamwMs,
    stepMs,
    results: [
      r("fwd_ms", fwdMs, "ms"),
      r("fwd_bwd_ms", fwdBwdMs, "ms"),
      r("adamw_ms", adamwMs, "ms"),
      r("train_step_ms", stepMs, "ms"),
      vsGemm("fwd_gflops", fwdGflops),
      vsGemm("fwd_bwd_gflops", fwdBwdGflops),
      r("fwd_bwd_over_fwd", fwdBwdMs / fwdMs, "x"),
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
  let target: ModelFigures | undefined;
  for (const width of [256, 512]) {
    const mlp = mlpModel({
      rows: TOKENS.batch * TOKENS.seq,
      inputs: width,
      hidden: 4 * width,
      outputs: width,
    });
    results.push(...(await measureModel(`mlp_${width}`, mlp, best, opts.quick)).results);
    const block = attentionBlockModel({
      ...TOKENS,
      width,
      heads: HEADS,
      hidden: swigluHidden(width),
    });
    const figures = await measureModel(`block_${width}`, block, best, opts.quick);
    results.push(...figures.results);
    if (width === 512) target = figures;
  }
  const blockFlops = attentionBlockModel({ ...TOKENS, width: 512, heads: HEADS, hidden: 1408 })
    .forwardFlops;
  const achieved = (3 * blockFlops) / (target!.fwdBwdMs * 1e6);
  results.push(
    {
      name: "engine.fwd_bwd_over_fwd",
      value: round(target!.fwdBwdMs / target!.fwdMs),
      unit: "x",
      target: "<= 3.2",
    },
    {
      name: "engine.fwd_bwd_vs_gemm",
      value: round(achieved / best),
      unit: "x",
      reference: round(best),
      ratio: round(achieved / best),
      target: ">= 0.5",
    },
  );
  return results;
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  for (const r of await run({ quick })) console.log(JSON.stringify(r));
}
