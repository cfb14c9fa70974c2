/**
 * Two small models used by the engine tests and the engine benchmark: an MLP regressor and one
 * pre-norm causal self-attention block with a SwiGLU MLP. Parameters are graph inputs (so a
 * train step can update them) and each graph outputs a scalar `loss`. Also a tiny Qwen2 config
 * for tests of the full model.
 *
 * Dimension letters: `N` rows, `B` batch, `T` positions, `D` width, `H` heads, `K = D/H` head
 * size, `F` MLP hidden width.
 *
 * @module
 */

import { GraphBuilder } from "./builder.ts";
import type { Graph, Value } from "./ir.ts";
import { type Qwen2Config, qwen2ConfigFromHF } from "./transformer.ts";

/** A tiny Qwen2: one layer, width 32, 4 query heads on 2 key/value heads, 32 token ids. */
export const TINY_QWEN2: Qwen2Config = qwen2ConfigFromHF({
  vocab_size: 32,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 2,
});

/** A parameter of a toy model: name, shape and init scale (normal with this std; 1 → ones). */
export interface ToyParam {
  readonly name: string;
  readonly shape: readonly number[];
  /** Standard deviation of the normal init, or `"ones"` for norm gains. */
  readonly init: number | "ones" | "zeros";
  /** Whether AdamW decays it (false for biases and norm gains). */
  readonly decay: boolean;
}

/** A toy model: its loss graph, its parameters, and its data inputs. */
export interface ToyModel {
  readonly graph: Graph;
  readonly params: readonly ToyParam[];
  /** Non-parameter inputs with their shapes (all float32). */
  readonly data: readonly { name: string; shape: readonly number[] }[];
  /** FLOPs of the forward MatMuls (2·m·n·k each). */
  readonly forwardFlops: number;
}

/** Shape of `mlpModel`. */
export interface MlpOptions {
  rows: number;
  inputs: number;
  hidden: number;
  outputs: number;
  /** Hidden layers (≥ 1); default 1. */
  layers?: number;
}

/**
 * MLP regressor: `pred = W_L·tanh(…tanh(x·W_1 + b_1)…) + b_L`, `loss = mean((pred − y)²)`.
 *
 * @param options Sizes.
 * @returns The model.
 */
export function mlpModel(options: MlpOptions): ToyModel {
  const { rows, inputs, hidden, outputs } = options;
  const layers = options.layers ?? 1;
  const b = new GraphBuilder("mlp");
  const x = b.input("x", "float32", [rows, inputs]); //                    [N,in]
  const y = b.input("y", "float32", [rows, outputs]); //                   [N,out]
  const params: ToyParam[] = [];
  const param = (name: string, shape: number[], init: ToyParam["init"], decay: boolean) => {
    params.push({ name, shape, init, decay });
    return b.input(name, "float32", shape);
  };
  let h: Value = x;
  let width = inputs;
  let flops = 0;
  for (let l = 0; l < layers; l++) {
    const w = param(`l${l}.weight`, [width, hidden], 1 / Math.sqrt(width), true);
    const bias = param(`l${l}.bias`, [hidden], "zeros", false);
    h = b.tanh(b.add(b.matmul(h, w), bias)); //                          [N,F]
    flops += 2 * rows * width * hidden;
    width = hidden;
  }
  const w = param("out.weight", [width, outputs], 1 / Math.sqrt(width), true);
  const bias = param("out.bias", [outputs], "zeros", false);
  const pred = b.add(b.matmul(h, w), bias); //                             [N,out]
  flops += 2 * rows * width * outputs;
  const err = b.sub(pred, y);
  b.output(b.reduceMean(b.mul(err, err), [0, 1], false), "loss");
  b.output(pred, "pred");
  return {
    graph: b.build(),
    params,
    data: [{ name: "x", shape: [rows, inputs] }, { name: "y", shape: [rows, outputs] }],
    forwardFlops: flops,
  };
}

/** Shape of `attentionBlockModel`. */
export interface AttentionBlockOptions {
  batch: number;
  seq: number;
  width: number;
  heads: number;
  /** SwiGLU hidden width F. */
  hidden: number;
}

/**
 * One pre-norm transformer block (Llama/Qwen2 layout, without RoPE):
 * ```
 * h   = x + Wo · attn(rms(x) · g1)        causal softmax(q·kᵀ/√K + mask) · v per head
 * out = h + Wd · (silu(rms(h) · g2 · Wg) ⊙ (rms(h) · g2 · Wu))
 * loss = mean(out ⊙ r)                    r: a fixed random "upstream gradient" input
 * ```
 * RMSNorm is written with ReduceMean/Sqrt/Div (the fused op's second output is wrong on WebGPU).
 *
 * @param options Sizes.
 * @returns The model.
 */
export function attentionBlockModel(options: AttentionBlockOptions): ToyModel {
  const { batch: B, seq: T, width: D, heads: H, hidden: F } = options;
  if (D % H !== 0) throw new Error(`attentionBlockModel: width ${D} not divisible by ${H} heads`);
  const K = D / H;
  const b = new GraphBuilder("attention_block");
  const x = b.input("x", "float32", [B, T, D]); //                          [B,T,D]
  const r = b.input("r", "float32", [B, T, D]); //                          [B,T,D]
  const params: ToyParam[] = [];
  const param = (name: string, shape: number[], init: ToyParam["init"], decay: boolean) => {
    params.push({ name, shape, init, decay });
    return b.input(name, "float32", shape);
  };
  const std = 1 / Math.sqrt(D);
  const g1 = param("attn_norm.weight", [D], "ones", false);
  const wq = param("attn.q.weight", [D, D], std, true);
  const wk = param("attn.k.weight", [D, D], std, true);
  const wv = param("attn.v.weight", [D, D], std, true);
  const wo = param("attn.o.weight", [D, D], std, true);
  const g2 = param("mlp_norm.weight", [D], "ones", false);
  const wg = param("mlp.gate.weight", [D, F], std, true);
  const wu = param("mlp.up.weight", [D, F], std, true);
  const wd = param("mlp.down.weight", [F, D], 1 / Math.sqrt(F), true);

  const rms = (v: Value, g: Value) => {
    const ms = b.reduceMean(b.mul(v, v), [-1]); //                         [B,T,1]
    return b.mul(b.div(v, b.sqrt(b.add(ms, b.scalar(1e-6)))), g);
  };
  const heads = (v: Value) => b.transpose(b.reshape(v, [B, T, H, K]), [0, 2, 1, 3]); // [B,H,T,K]

  const h1 = rms(x, g1); //                                                [B,T,D]
  const q = heads(b.matmul(h1, wq));
  const k = heads(b.matmul(h1, wk));
  const v = heads(b.matmul(h1, wv));
  const mask = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
  const scores = b.add(
    b.mul(b.matmul(q, b.transpose(k, [0, 1, 3, 2])), b.scalar(1 / Math.sqrt(K))),
    b.constant("float32", [T, T], mask, "causal_mask"),
  ); //                                                                    [B,H,T,T]
  const ctx = b.matmul(b.softmax(scores, -1), v); //                       [B,H,T,K]
  const merged = b.reshape(b.transpose(ctx, [0, 2, 1, 3]), [B, T, D]); //  [B,T,D]
  const h = b.add(x, b.matmul(merged, wo)); //                             [B,T,D]
  const h2 = rms(h, g2);
  const gate = b.matmul(h2, wg); //                                        [B,T,F]
  const silu = b.mul(gate, b.sigmoid(gate));
  const out = b.add(h, b.matmul(b.mul(silu, b.matmul(h2, wu)), wd)); //   [B,T,D]
  b.output(b.reduceMean(b.mul(out, r), [0, 1, 2], false), "loss");
  b.output(out, "out");
  const N = B * T;
  const forwardFlops = 2 * N * D * D * 4 + 2 * 2 * B * H * T * T * K + 2 * N * D * F * 3;
  return {
    graph: b.build(),
    params,
    data: [{ name: "x", shape: [B, T, D] }, { name: "r", shape: [B, T, D] }],
    forwardFlops,
  };
}

/**
 * A seeded standard-normal stream (Mulberry32 + Box–Muller): enough for initialising toy
 * parameters and drawing test inputs, with no `Math.random`.
 *
 * @param seed 32-bit seed.
 * @returns A function returning the next N(0, 1) sample.
 */
export function normalStream(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/**
 * Float32 data of `shape` drawn from N(0, std²).
 *
 * @param shape Dims.
 * @param next A `normalStream`.
 * @param std Standard deviation; default 1.
 * @returns The data.
 */
export function randomNormal(shape: readonly number[], next: () => number, std = 1): Float32Array {
  const n = shape.reduce((a, d) => a * d, 1);
  return Float32Array.from({ length: n }, () => next() * std);
}

/**
 * Initial values of a toy model's parameters, in declaration order.
 *
 * @param params The model's parameters.
 * @param seed Seed of the normal stream.
 * @returns Name → float32 data.
 */
export function initToyParams(
  params: readonly ToyParam[],
  seed: number,
): Map<string, Float32Array> {
  const next = normalStream(seed);
  const out = new Map<string, Float32Array>();
  for (const p of params) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    const data = p.init === "ones"
      ? new Float32Array(n).fill(1)
      : p.init === "zeros"
      ? new Float32Array(n)
      : randomNormal(p.shape, next, p.init);
    out.set(p.name, data);
  }
  return out;
}
