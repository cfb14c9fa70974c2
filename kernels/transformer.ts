/**
 * The policy model: the Qwen2 decoder-only transformer, written as ONNX graphs.
 *
 * One file in dependency order: config (from an HF `config.json`), parameters, RMSNorm, RoPE,
 * grouped-query causal attention, SwiGLU MLP, block, model, and the four graphs the pipeline runs
 * (prefill, decode, score, train).
 *
 * Dimension letters used in the shape comments:
 *
 * ```
 * B batch        T new tokens per sequence   P past tokens   S keys attended (P + T, or C)
 * C cache slots   D hidden size   H query heads   K key/value heads   G = H / K   E head size
 * F intermediate size (SwiGLU)   V vocabulary
 * ```
 *
 * Weights are graph inputs named with the Hugging Face tensor names (`model.layers.3.mlp.up_proj.
 * weight`, …), in HF's `[out, in]` layout. On the CPU EP inputs are read zero-copy, so a step never
 * copies the weights and no graph hits protobuf's 2 GB limit. A linear layer never transposes a
 * weight at run time: it is `MatMul(x, Transpose(W))`, which ORT's MatmulTransposeFusion turns
 * into one FusedMatMul with `transB` (MLAS reads W as stored), or, for the 2-D activations of a
 * decode step, `Gemm(x, W, bias, transB = 1)` with the bias fused. Measured on the 2-core CPU:
 * for [256, 192] × [512, 192]ᵀ the two and a MatMul against a pre-transposed copy are within
 * noise of each other; for the real model's 4-row decode ([4, 1536] × [8960, 1536]ᵀ) the
 * transB forms take 11–13 ms and the pre-transposed MatMul 23 ms, so HF's layout is also the
 * fast choice. The MatMul form keeps activations 3-D, so symbolic batch and time dims
 * survive every reshape.
 *
 * Only WebGPU-safe ops are emitted (kernels/README.md §2): no LogSoftmax; token ids, masks
 * and positions are int32 inside the engine, because the WebGPU EP moves no int64 tensor (Slice,
 * Unsqueeze, Reshape, Concat, even Identity of int64 fall back to the CPU; an int64 graph input
 * can only feed Gather indices directly), and masks become float before any arithmetic. int64
 * appears only in the exported model's conventional inputs.
 * Under WebGPU the placement check (tests/kernels/webgpu_placement_test.ts) finds no node on the
 * CPU in the engine's prefill, decode, score and train graphs: the causal mask counts indices in
 * float32 (see `causalBias`) and the next-token targets are shifted in float32 (see
 * `nextTokenIds`).
 *
 * @example
 * ```ts
 * import { buildDecoderGraph, qwen2ConfigFromHF } from "./transformer.ts";
 * const config = qwen2ConfigFromHF({
 *   vocab_size: 32, hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
 *   num_attention_heads: 4, num_key_value_heads: 2,
 * });
 * const prefill = buildDecoderGraph(config, { cache: "none", logits: "last" });
 * prefill.outputs.map((v) => v.name); // ["logits", "present.0.key", …]
 * ```
 *
 * @module
 */

import type { DType, Graph, Shape, Value } from "./ir.ts";
import { GraphBuilder } from "./builder.ts";
import { type HeadChunking, lossChunking } from "./_chunk_head.ts";

// ----- config -------------------------------------------------------------------------------------

/** Architecture of a Qwen2-family decoder (the fields of HF's `Qwen2Config` that shape the math). */
export interface Qwen2Config {
  /** Number of token ids. */
  readonly vocabSize: number;
  /** Width D of the residual stream. */
  readonly hiddenSize: number;
  /** Width F of the SwiGLU MLP's gate and up projections. */
  readonly intermediateSize: number;
  /** Number of transformer blocks. */
  readonly numLayers: number;
  /** Query heads H. */
  readonly numHeads: number;
  /** Key/value heads K; each serves H / K query heads (grouped-query attention). */
  readonly numKvHeads: number;
  /** Head size E = D / H. */
  readonly headDim: number;
  /** RoPE base θ: pair i of a head rotates by position · θ^(−2i/E). */
  readonly ropeTheta: number;
  /** ε inside RMSNorm's square root. */
  readonly rmsNormEps: number;
  /** Longest sequence the model was trained for (RoPE itself has no table, so this only checks). */
  readonly maxPositions: number;
  /** The output head reuses `model.embed_tokens.weight` (no `lm_head.weight` tensor). */
  readonly tieWordEmbeddings: boolean;
}

/** A bad `config.json`: names the key, the value found and what was expected. */
export class ConfigError extends Error {
  /** The key at fault. */
  readonly key: string;
  constructor(key: string, message: string) {
    super(`config.json: ${key} ${message}`);
    this.name = "ConfigError";
    this.key = key;
  }
}

type HFKind = "int" | "number" | "bool";

/** One `config.json` key we read; `dflt` is HF's own default (absent: the key is required). */
interface HFKey {
  readonly key: string;
  readonly field: keyof Qwen2Config;
  readonly kind: HFKind;
  readonly dflt?: (json: Record<string, unknown>) => unknown;
}

/** The keys read from `config.json`, with HF `Qwen2Config` defaults where HF has a sensible one. */
const HF_KEYS: readonly HFKey[] = [
  { key: "vocab_size", field: "vocabSize", kind: "int" },
  { key: "hidden_size", field: "hiddenSize", kind: "int" },
  { key: "intermediate_size", field: "intermediateSize", kind: "int" },
  { key: "num_hidden_layers", field: "numLayers", kind: "int" },
  { key: "num_attention_heads", field: "numHeads", kind: "int" },
  // HF: a missing or null num_key_value_heads means plain multi-head attention.
  {
    key: "num_key_value_heads",
    field: "numKvHeads",
    kind: "int",
    dflt: (j) => j.num_attention_heads,
  },
  // Qwen2 checkpoints use 1e4 (1.5B distills) to 1e6 (Qwen2.5); HF's default is 1e4.
  { key: "rope_theta", field: "ropeTheta", kind: "number", dflt: () => 10000 },
  { key: "rms_norm_eps", field: "rmsNormEps", kind: "number", dflt: () => 1e-6 },
  { key: "max_position_embeddings", field: "maxPositions", kind: "int", dflt: () => 32768 },
  { key: "tie_word_embeddings", field: "tieWordEmbeddings", kind: "bool", dflt: () => false },
];

const KIND_CHECK: Readonly<Record<HFKind, { ok: (v: unknown) => boolean; expected: string }>> = {
  int: { ok: (v) => Number.isInteger(v) && (v as number) > 0, expected: "a positive integer" },
  number: { ok: (v) => typeof v === "number" && v > 0 && isFinite(v), expected: "a number > 0" },
  bool: { ok: (v) => typeof v === "boolean", expected: "true or false" },
};

/** Keys whose presence with another value means an architecture we do not implement. */
const UNSUPPORTED: readonly { key: string; ok: (v: unknown) => boolean; expected: string }[] = [
  { key: "model_type", ok: (v) => v === "qwen2", expected: '"qwen2"' },
  { key: "hidden_act", ok: (v) => v === "silu", expected: '"silu" (SwiGLU)' },
  { key: "rope_scaling", ok: (v) => v === null, expected: "null (no RoPE scaling)" },
  { key: "use_sliding_window", ok: (v) => v === false, expected: "false" },
  { key: "attention_dropout", ok: (v) => v === 0, expected: "0" },
];

/**
 * Read a model architecture from an HF `config.json` object.
 *
 * @param json The parsed `config.json`.
 * @returns The validated config.
 * @throws ConfigError naming the key, the value and what was expected.
 * @example
 * ```ts
 * import { qwen2ConfigFromHF } from "./transformer.ts";
 * const c = qwen2ConfigFromHF({ vocab_size: 40, hidden_size: 192, intermediate_size: 512,
 *   num_hidden_layers: 4, num_attention_heads: 4 });
 * c.headDim; // 48
 * ```
 */
export function qwen2ConfigFromHF(json: unknown): Qwen2Config {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError("(root)", `must be a JSON object, got ${JSON.stringify(json)}`);
  }
  const j = json as Record<string, unknown>;
  for (const u of UNSUPPORTED) {
    if (u.key in j && !u.ok(j[u.key])) {
      throw new ConfigError(
        u.key,
        `is ${JSON.stringify(j[u.key])}; only ${u.expected} is supported`,
      );
    }
  }
  const out: Record<string, unknown> = {};
  for (const k of HF_KEYS) {
    const raw = j[k.key] ?? k.dflt?.(j);
    if (raw === undefined || raw === null) {
      throw new ConfigError(k.key, `is missing; expected ${KIND_CHECK[k.kind].expected}`);
    }
    if (!KIND_CHECK[k.kind].ok(raw)) {
      throw new ConfigError(
        k.key,
        `is ${JSON.stringify(raw)}; expected ${KIND_CHECK[k.kind].expected}`,
      );
    }
    out[k.field] = raw;
  }
  const c = out as Omit<Qwen2Config, "headDim">;
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new ConfigError(
      "hidden_size",
      `(${c.hiddenSize}) must be divisible by num_attention_heads (${c.numHeads})`,
    );
  }
  if (c.numHeads % c.numKvHeads !== 0) {
    throw new ConfigError(
      "num_key_value_heads",
      `(${c.numKvHeads}) must divide num_attention_heads (${c.numHeads})`,
    );
  }
  const headDim = c.hiddenSize / c.numHeads;
  if (headDim % 2 !== 0) {
    throw new ConfigError("hidden_size", `/ num_attention_heads = ${headDim} must be even (RoPE)`);
  }
  if ("head_dim" in j && j.head_dim !== null && j.head_dim !== headDim) {
    throw new ConfigError(
      "head_dim",
      `is ${JSON.stringify(j.head_dim)}; expected hidden_size / num_attention_heads = ${headDim}`,
    );
  }
  return { ...c, headDim };
}

/**
 * The `config.json` object HF `transformers` needs to open a checkpoint of this architecture.
 *
 * @param config The architecture.
 * @param extra Further keys (e.g. `bos_token_id`, `eos_token_id`, `torch_dtype`).
 * @returns A JSON-ready object.
 */
export function qwen2ConfigToHF(
  config: Qwen2Config,
  extra: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  return {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    hidden_act: "silu",
    max_position_embeddings: config.maxPositions,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    tie_word_embeddings: config.tieWordEmbeddings,
    use_sliding_window: false,
    attention_dropout: 0,
    initializer_range: 0.02,
    torch_dtype: "float32",
    ...extra,
  };
}

/**
 * The default tiny policy for the built-in task (sized so the whole tiny pipeline runs on a laptop CPU).
 *
 * @param vocabSize The tokenizer's vocabulary size (the character tokenizer has about 30).
 * @returns A config with ≈ 1.8M parameters.
 */
export function tinyPolicyConfig(vocabSize: number): Qwen2Config {
  return qwen2ConfigFromHF({
    vocab_size: vocabSize,
    hidden_size: 192,
    intermediate_size: 512,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    // One key/value head shared by the 4 query heads (multi-query attention, the far end of
    // Qwen2's grouped-query attention): batched decoding on the CPU is bound by reading the KV
    // cache, which this makes 4× smaller than with 4 key/value heads (bench_model.ts).
    num_key_value_heads: 1,
    // Context of the tiny task: prompt plus worked solution fit in 128 characters.
    max_position_embeddings: 128,
    // A 30-token vocabulary makes a separate output head pointless; tie it to the embedding.
    tie_word_embeddings: true,
  });
}

// ----- parameters ---------------------------------------------------------------------------------

/**
 * Every weight tensor of the model, with its HF name and `[out, in]` shape, in HF order.
 *
 * @param config The architecture.
 * @returns Name → shape.
 */
export function parameterShapes(config: Qwen2Config): Map<string, number[]> {
  const { vocabSize: V, hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: K } = config;
  const E = config.headDim;
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [V, D]]]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.set(`${p}.input_layernorm.weight`, [D]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [H * E, D]);
    shapes.set(`${p}.self_attn.q_proj.bias`, [H * E]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [K * E, D]);
    shapes.set(`${p}.self_attn.k_proj.bias`, [K * E]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [K * E, D]);
    shapes.set(`${p}.self_attn.v_proj.bias`, [K * E]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [D, H * E]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [D]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [F, D]);
    shapes.set(`${p}.mlp.up_proj.weight`, [F, D]);
    shapes.set(`${p}.mlp.down_proj.weight`, [D, F]);
  }
  shapes.set("model.norm.weight", [D]);
  if (!config.tieWordEmbeddings) shapes.set("lm_head.weight", [V, D]);
  return shapes;
}

/**
 * Number of parameters.
 *
 * @param config The architecture.
 * @returns The count (tied embeddings counted once).
 */
export function parameterCount(config: Qwen2Config): number {
  let n = 0;
  for (const s of parameterShapes(config).values()) n += s.reduce((a, d) => a * d, 1);
  return n;
}

/**
 * Floating-point operations of one forward pass (multiply-adds count 2; matrix products only,
 * which is > 98% of the work): the linear layers for `tokens` positions, attention of each of them
 * against `keys` positions, and the output head for `logitRows` positions.
 *
 * @param config The architecture.
 * @param counts Tokens computed, keys each attends to (on average), rows of logits produced.
 * @returns FLOPs.
 */
export function forwardFlops(
  config: Qwen2Config,
  counts: { tokens: number; keys: number; logitRows: number },
): number {
  const { hiddenSize: D, intermediateSize: F, numHeads: H, numKvHeads: K, headDim: E } = config;
  const linear = D * H * E * 2 + D * K * E * 2 + 3 * D * F;
  const attention = 2 * H * E * counts.keys; // q·k and p·v
  const perToken = 2 * config.numLayers * (linear + attention);
  return counts.tokens * perToken + 2 * counts.logitRows * D * config.vocabSize;
}

/** The weight values of one graph, by HF name. */
export type Weights = ReadonlyMap<string, Value>;

/**
 * Declare every weight as a float32 graph input named by its HF name.
 *
 * @param b The graph being built.
 * @param config The architecture.
 * @returns The weight values.
 */
export function declareWeights(b: GraphBuilder, config: Qwen2Config): Weights {
  const w = new Map<string, Value>();
  for (const [name, shape] of parameterShapes(config)) w.set(name, b.input(name, "float32", shape));
  return w;
}

function weight(w: Weights, name: string): Value {
  const v = w.get(name);
  if (!v) throw new Error(`transformer: weight ${name} was not declared`);
  return v;
}

// ----- building blocks ----------------------------------------------------------------------------

/**
 * Linear layer with an HF `[out, in]` weight: y = x Wᵀ (+ bias). A 2-D input (one token per
 * sequence, in decode) becomes one Gemm(transB = 1) with the bias fused in; others a MatMul against
 * a Transpose that ORT folds into the MatMul.
 *
 * @param b The graph being built.
 * @param x Input [..., in].
 * @param w Weight [out, in].
 * @param bias Optional bias [out].
 * @returns [..., out].
 */
export function linear(b: GraphBuilder, x: Value, w: Value, bias?: Value): Value {
  if (x.shape.length === 2) return b.gemm(x, w, bias ?? null, { transB: true }); // [N, out]
  const y = b.matmul(x, b.transpose(w, [1, 0])); // [..., out]; ORT fuses into MatMul(transB)
  return bias ? b.add(y, bias) : y;
}

/**
 * RMSNorm (Zhang & Sennrich 2019), as HF Qwen2: x / sqrt(mean(x²) + ε) · w, over the last axis.
 * Written as Pow → ReduceMean → Add → Sqrt → Div → Mul, the pattern ORT fuses into one
 * SimplifiedLayerNormalization kernel on the CPU.
 *
 * @param b The graph being built.
 * @param x Input [..., D].
 * @param w Scale [D].
 * @param eps ε.
 * @returns [..., D].
 */
export function rmsNorm(b: GraphBuilder, x: Value, w: Value, eps: number): Value {
  const ms = b.reduceMean(b.pow(x, b.scalar(2)), [-1]); // [..., 1]
  return b.mul(b.div(x, b.sqrt(b.add(ms, b.scalar(eps)))), w);
}

/**
 * cos and signed sin of the rotation angles, each [B, T, 1, E] (the two halves repeat, as HF).
 * `sin` carries rotate_half's sign: its first half is −sin (see {@link applyRope}).
 */
export interface Rope {
  readonly cos: Value;
  readonly sin: Value;
}

/**
 * RoPE angles (Su et al. 2021) from position ids: angle(p, i) = p · θ^(−2i/E) for the E/2 pairs,
 * computed in float32 as HF does, so no [max_positions, E] table is stored. The first half of
 * the angles is negated: cos is unchanged and sin comes out as [−sin, sin], the sign
 * rotate_half would apply, so {@link applyRope} needs no Neg.
 *
 * @param b The graph being built.
 * @param config The architecture.
 * @param positions Position ids [B, T], int32 (WebGPU-safe to cast) or int64.
 * @returns cos and signed sin [B, T, 1, E].
 */
export function ropeAngles(b: GraphBuilder, config: Qwen2Config, positions: Value): Rope {
  const E = config.headDim;
  const invFreq = Float32Array.from(
    { length: E / 2 },
    (_, i) => 1 / config.ropeTheta ** ((2 * i) / E),
  );
  const inv = b.constant(
    "float32",
    [E],
    Float32Array.from([...invFreq.map((f) => -f), ...invFreq]),
    "inv_freq_signed",
  );
  const pos = b.unsqueeze(b.cast(positions, "float32"), [2, 3]); // [B, T, 1, 1]
  const angle = b.mul(pos, inv); // [B, T, 1, E]
  return { cos: b.cos(angle), sin: b.sin(angle) };
}

/**
 * Rotate query or key heads by their positions: x·cos + rotate_half(x)·sin, where
 * rotate_half([x₁, x₂]) = [−x₂, x₁] pairs dimension i with i + E/2 (HF's layout, not interleaved).
 *
 * The sign lives in `rope.sin`, so rotate_half is just the swap [x₂, x₁]: one Slice that reverses
 * the two halves (x viewed as [..., 2, E/2]), whose gradient is one Gather. The Split, Neg and
 * Concat it replaces cost 8 elementwise passes over q and k in the backward (Pad, Pad, Add, Neg,
 * Split, …) against 4 now; measured ≈ 9 ms less per width-512 block (32 × 128 tokens) forward
 * and backward.
 *
 * @param b The graph being built.
 * @param x Heads [B, T, heads, E], or [B, heads, E] for one token per sequence.
 * @param rope Angles from {@link ropeAngles}, shaped to broadcast against `x`.
 * @returns Like `x`.
 */
export function applyRope(b: GraphBuilder, x: Value, rope: Rope): Value {
  const half = (x.shape.at(-1) as number) / 2;
  const keep = x.shape.slice(0, -1).map(() => 0);
  const halves = b.reshape(x, [...keep, 2, half]); // [..., h, 2, E/2]
  const swapped = b.slice(halves, [-1], [-(2 ** 31)], [-2], [-1]); // [x₂, x₁]
  const rotated = b.reshape(swapped, [...keep, 2 * half]); // [..., h, E]
  return b.add(b.mul(x, rope.cos), b.mul(rotated, rope.sin));
}

/** Additive attention bias: 0 where a query may attend a key, this where it may not. */
const MASKED = -1e9;

/**
 * Additive causal + padding bias for T queries against S keys, where the queries are the last T of
 * the S positions: query i may attend key j when j ≤ S − T + i and `keyMask[b, j]` is 1.
 * A fully masked row (a left-padding query) attends uniformly instead of producing NaN.
 *
 * The indices are counted in float32 (CumSum of ones) rather than taken from shape tensors, whose
 * int64 arithmetic (Slice, Sub, Concat) would run on the CPU under WebGPU:
 *   kIdx[b, j] = j,  qIdx[b, i] = (S − T) + i,  keep = (kIdx ≤ qIdx) · keyMask.
 *
 * @param b The graph being built.
 * @param keyMask [B, S] int32 or int64, 1 for real tokens.
 * @param positions [B, T] position ids of the queries (only their shape is used).
 * @param groups G: the bias is repeated for each query head of a key/value head.
 * @returns Bias [B, 1, G·T, S] (broadcasts over K).
 */
export function causalBias(
  b: GraphBuilder,
  keyMask: Value,
  positions: Value,
  groups: number,
): Value {
  const one = b.scalar(1);
  const zero = b.scalar(0);
  const keyReal = b.cast(keyMask, "float32"); // [B, S]
  const onesK = b.add(b.mul(keyReal, zero), one); // [B, S]
  const onesQ = b.add(b.mul(b.cast(positions, "float32"), zero), one); // [B, T]
  const axis = b.scalar(1, "int32");
  const kIdx = b.sub(b.op1("CumSum", [onesK, axis]), one); // [B, S]: j
  const offset = b.sub(b.reduceSum(onesK, [1]), b.reduceSum(onesQ, [1])); // [B, 1]: S − T
  const qIdx = b.add(b.sub(b.op1("CumSum", [onesQ, axis]), one), offset); // [B, T]: S − T + i
  const causal = b.lessOrEqual(b.unsqueeze(kIdx, [1]), b.unsqueeze(qIdx, [2])); // [B, T, S]
  const keep = b.mul(b.unsqueeze(keyReal, [1]), b.cast(causal, "float32")); // [B, T, S]
  const bias = b.unsqueeze(b.mul(b.sub(keep, one), b.scalar(-MASKED)), [1]); // [B, 1, T, S]
  return groups === 1 ? bias : b.concat(Array(groups).fill(bias), 2); // [B, 1, G·T, S]
}

/**
 * Additive padding bias for one query against cache slots (all earlier than the query).
 *
 * @param b The graph being built.
 * @param slotMask [B, C] int32, 1 for filled slots.
 * @returns Bias [B, 1, 1, C].
 */
export function slotBias(b: GraphBuilder, slotMask: Value): Value {
  const keep = b.cast(slotMask, "float32"); // [B, C]
  return b.unsqueeze(b.mul(b.sub(keep, b.scalar(1)), b.scalar(-MASKED)), [1, 2]);
}

/** How a graph gets the keys and values of earlier tokens. */
export type CacheMode =
  /** No earlier tokens: attend among the T inputs (prefill, score, train). */
  | "none"
  /** HF / Optimum: `past_key_values.*` [B, K, P, E] in, `present.*` = past ‖ new out. */
  | "concat"
  /**
   * Host-held fixed-size cache (decode, one token): `cache.*` [B, K, C, E] in, read zero-copy;
   * only the new token's `new.*` [B, K, 1, E] out, written into the cache by the caller. Keeps
   * a CPU decode step from copying the whole cache twice (concat in, copy out).
   */
  | "slots";

/** Per-layer key and value of the new tokens, [B, K, T, E] each. */
export interface LayerKv {
  readonly key: Value;
  readonly value: Value;
}

/** What attention needs besides the layer input. */
interface AttentionContext {
  readonly config: Qwen2Config;
  readonly rope: Rope;
  /** The same angles scaled by 1/√E, for the queries (folds the score scale into RoPE). */
  readonly ropeQ: Rope;
  /**
   * Bias over the keys: [B, 1, G·T, S] (none, concat) or [B, 1, 1, C] (slots); with
   * `biasBlocks`, the causal bias [B, 1, T, S] they are split from.
   */
  readonly bias: Value;
  /**
   * Query blocks (score graph, no cache): the causal bias split into n blocks of consecutive
   * queries, [B, 1, c_k, S] each; attention then runs block by block ({@link blockedAttention}).
   */
  readonly biasBlocks?: readonly Value[];
  readonly cache: CacheMode;
  /** Earlier keys and values of this layer (concat: [B, K, P, E]; slots: [B, K, C, E]). */
  readonly past?: LayerKv;
}

/**
 * Grouped-query causal self-attention of one layer (Qwen2: biases on q, k, v; none on o).
 *
 * The G query heads of each key/value head are stacked as rows, [B, K, G·T, E], so every
 * attention product is a plain 4-D batched MatMul over (B, K) and no key or value is repeated or
 * copied (the cache is only ever read through a Transpose that ORT folds into the MatMul).
 * Scores are scaled by 1/√E through the queries' RoPE angles (no separate multiply).
 *
 * @param b The graph being built.
 * @param x Normalised input [B, T, D].
 * @param w Weights.
 * @param layer Layer index.
 * @param ctx Config, RoPE angles, mask bias, cache mode and past.
 * @returns Output [B, T, D] and this step's new key/value (concat: the whole present).
 */
export function attention(
  b: GraphBuilder,
  x: Value,
  w: Weights,
  layer: number,
  ctx: AttentionContext,
): { out: Value; kv: LayerKv } {
  const { numHeads: H, numKvHeads: K, headDim: E } = ctx.config;
  const G = H / K;
  const p = `model.layers.${layer}.self_attn`;
  const proj = (name: string) =>
    linear(b, x, weight(w, `${p}.${name}.weight`), weight(w, `${p}.${name}.bias`));
  // One token per sequence (decode): x is [B, D] and the head layouts need no transposes.
  const oneToken = x.shape.length === 2;
  let qs: Value; // [B, K, G·T, E], scaled by 1/√E
  let kNew: Value; // [B, K, T, E]
  let vNew: Value; // [B, K, T, E]
  if (oneToken) {
    qs = b.reshape(applyRope(b, b.reshape(proj("q_proj"), [0, H, E]), ctx.ropeQ), [0, K, G, E]);
    kNew = b.reshape(applyRope(b, b.reshape(proj("k_proj"), [0, K, E]), ctx.rope), [0, K, 1, E]);
    vNew = b.reshape(proj("v_proj"), [0, K, 1, E]);
  } else {
    const q = applyRope(b, b.reshape(proj("q_proj"), [0, 0, H, E]), ctx.ropeQ); // [B, T, H, E]
    const k = applyRope(b, b.reshape(proj("k_proj"), [0, 0, K, E]), ctx.rope); // [B, T, K, E]
    const v = b.reshape(proj("v_proj"), [0, 0, K, E]); // [B, T, K, E]
    if (ctx.biasBlocks !== undefined && ctx.cache === "none") {
      // Score graph of long sequences: the queries in blocks, keys and values whole.
      const key = b.transpose(k, [0, 2, 1, 3]); //                                  [B, K, T, E]
      const value = b.transpose(v, [0, 2, 1, 3]); //                                [B, K, T, E]
      const merged = blockedAttention(b, q, key, value, ctx.biasBlocks, G); //       [B, T, H·E]
      return { out: linear(b, merged, weight(w, `${p}.o_proj.weight`)), kv: { key, value } };
    }
    const qg = b.transpose(b.reshape(q, [0, 0, K, G, E]), [0, 2, 3, 1, 4]); // [B, K, G, T, E]
    qs = b.reshape(qg, [0, 0, -1, E]); // [B, K, G·T, E]
    kNew = b.transpose(k, [0, 2, 1, 3]); // [B, K, T, E]
    vNew = b.transpose(v, [0, 2, 1, 3]); // [B, K, T, E]
  }

  let keys = kNew;
  let values = vNew;
  if (ctx.cache === "concat") {
    keys = b.concat([ctx.past!.key, kNew], 2); // [B, K, S, E]
    values = b.concat([ctx.past!.value, vNew], 2);
  } else if (ctx.cache === "slots") {
    keys = ctx.past!.key; // [B, K, C, E]
    values = ctx.past!.value;
  }
  let scores = b.add(b.matmul(qs, b.transpose(keys, [0, 1, 3, 2])), ctx.bias); // [B, K, G·T, S]
  let mixed: Value; // [B, K, G·T, E]
  if (ctx.cache === "slots") {
    // One new token (T = 1): it also attends to itself, one more score column q·k_new.
    const self = b.reduceSum(b.mul(qs, kNew), [-1]); // [B, K, G, 1]
    scores = b.concat([scores, self], 3); // [B, K, G, C + 1]
    const probs = b.softmax(scores, -1);
    const pCache = b.slice(probs, [0], [-1], [3]); // [B, K, G, C]
    const pSelf = b.slice(probs, [-1], [2 ** 31 - 1], [3]); // [B, K, G, 1]
    mixed = b.add(b.matmul(pCache, values), b.mul(pSelf, vNew));
  } else {
    mixed = b.matmul(b.softmax(scores, -1), values);
  }
  const merged = oneToken
    ? b.reshape(mixed, [0, H * E]) // [B, D]
    : b.reshape(b.transpose(b.reshape(mixed, [0, 0, G, -1, E]), [0, 3, 1, 2, 4]), [0, 0, H * E]);
  const out = linear(b, merged, weight(w, `${p}.o_proj.weight`)); // like x
  const kv = ctx.cache === "concat" ? { key: keys, value: values } : { key: kNew, value: vNew };
  return { out, kv };
}

/**
 * A tensor cut along one axis into n = 2^d consecutive parts by d rounds of halving: each round is
 * a Split with `num_outputs` 2 (⌈L/2⌉ positions, then ⌊L/2⌋), so the parts hold ⌊L/n⌋ or
 * ⌈L/n⌉ positions, and none is empty when L ≥ n. Two outputs a Split, not n: WebGPU's Split
 * shader binds every output as a storage buffer, and a shader may bind only a few (12 on
 * SwiftShader, 8 by WebGPU's default limits).
 *
 * @param b The graph being built.
 * @param x The tensor.
 * @param axis The axis to cut.
 * @param n Part count, a power of two.
 * @returns The parts, in order.
 */
function halvings(b: GraphBuilder, x: Value, axis: number, n: number): Value[] {
  if (n === 1) return [x];
  const [head, tail] = b.op("Split", [x], { axis, num_outputs: 2 }, { outputs: 2 });
  return [...halvings(b, head, axis, n / 2), ...halvings(b, tail, axis, n / 2)];
}

/**
 * Causal attention of T queries taken in n blocks of consecutive positions, keys and values
 * whole (the score graph of long sequences). Block k's scores [B, K, G·c_k, S] are made, masked,
 * normalised and applied to the values before block k + 1 starts (the blocks meet only in the
 * final Concat, so ORT's depth-first node order runs them one after the other), and a run holds
 * one block's scores instead of all T rows': for 2048 positions of a 12-head model, three
 * [12, 2048, 2048] float32 tensors per layer (scores, masked scores, softmax: 604 MB) become
 * three [12, 128, 2048] ones (38 MB) in 16 blocks. Each query row meets the same keys, bias and
 * softmax as in {@link attention}'s one-block path, so the numbers are the same to float
 * rounding.
 *
 * WebGPU-safe without shape arithmetic: the blocks come from {@link halvings} (n a power of two,
 * blocks of ⌊T/n⌋ or ⌈T/n⌉ positions), the bias blocks from the same halvings of the causal
 * bias, broadcast over the G query heads of each key/value head (a 5-D view of the scores)
 * rather than copied G times, and the view is undone with the scores' own Shape.
 *
 * @param b The graph being built.
 * @param q Queries after RoPE, scaled by 1/√E: [B, T, H, E].
 * @param key Keys [B, K, S, E].
 * @param value Values [B, K, S, E].
 * @param biasBlocks The causal bias [B, 1, T, S] cut into n blocks along T by {@link halvings}:
 *   [B, 1, c_k, S].
 * @param groups G = H / K.
 * @returns Attention output before `o_proj`, [B, T, H·E].
 */
export function blockedAttention(
  b: GraphBuilder,
  q: Value,
  key: Value,
  value: Value,
  biasBlocks: readonly Value[],
  groups: number,
): Value {
  const [H, E] = [q.shape[2] as number, q.shape[3] as number];
  const K = H / groups;
  const n = biasBlocks.length;
  const blocks = halvings(b, q, 1, n); //                                        n × [B, c, H, E]
  const keyT = b.transpose(key, [0, 1, 3, 2]); //                                    [B, K, E, S]
  const mixed = blocks.map((qk, k) => {
    const heads = b.transpose(b.reshape(qk, [0, 0, K, groups, E]), [0, 2, 3, 1, 4]); // [B,K,G,c,E]
    const scores = b.matmul(b.reshape(heads, [0, 0, -1, E]), keyT); //              [B, K, G·c, S]
    const byHead = b.reshape(b.unsqueeze(scores, [2]), [0, 0, groups, -1, 0]); //    [B, K, G, c, S]
    const masked = b.add(byHead, b.unsqueeze(biasBlocks[k], [1])); //                 [B, K, G, c, S]
    const probs = b.reshape(b.softmax(masked, -1), b.shape(scores)); //              [B, K, G·c, S]
    const out = b.reshape(b.matmul(probs, value), [0, 0, groups, -1, E]); //          [B, K, G, c, E]
    return b.reshape(b.transpose(out, [0, 3, 1, 2, 4]), [0, 0, H * E]); //            [B, c, H·E]
  });
  return n === 1 ? mixed[0] : b.concat(mixed, 1); //                                  [B, T, H·E]
}

/**
 * SwiGLU MLP (Shazeer 2020), as HF Qwen2: down(silu(gate(x)) ⊙ up(x)), no biases.
 *
 * @param b The graph being built.
 * @param x Normalised input [B, T, D].
 * @param w Weights.
 * @param layer Layer index.
 * @returns [B, T, D].
 */
export function mlp(b: GraphBuilder, x: Value, w: Weights, layer: number): Value {
  const p = `model.layers.${layer}.mlp`;
  const gate = linear(b, x, weight(w, `${p}.gate_proj.weight`)); // [B, T, F]
  const up = linear(b, x, weight(w, `${p}.up_proj.weight`)); // [B, T, F]
  const silu = b.mul(gate, b.sigmoid(gate)); // x·σ(x): ORT fuses it (QuickGelu, α = 1)
  return linear(b, b.mul(silu, up), weight(w, `${p}.down_proj.weight`)); // [B, T, D]
}

/**
 * One pre-norm block: h = x + attn(norm₁(x)); out = h + mlp(norm₂(h)).
 *
 * @param b The graph being built.
 * @param x Residual stream [B, T, D].
 * @param w Weights.
 * @param layer Layer index.
 * @param ctx Attention context.
 * @returns The new residual stream and the layer's key/value output.
 */
export function block(
  b: GraphBuilder,
  x: Value,
  w: Weights,
  layer: number,
  ctx: AttentionContext,
): { out: Value; kv: LayerKv } {
  const p = `model.layers.${layer}`;
  const eps = ctx.config.rmsNormEps;
  const attn = attention(
    b,
    rmsNorm(b, x, weight(w, `${p}.input_layernorm.weight`), eps),
    w,
    layer,
    ctx,
  );
  const h = b.add(x, attn.out);
  const m = mlp(b, rmsNorm(b, h, weight(w, `${p}.post_attention_layernorm.weight`), eps), w, layer);
  return { out: b.add(h, m), kv: attn.kv };
}

// ----- model --------------------------------------------------------------------------------------

/** Graph inputs of the model. */
export interface ModelInputs {
  /** Token ids [B, T], int32 (engine) or int64 (export): Gather indices into the embedding. */
  readonly ids: Value;
  /** Keys mask: [B, S] (none/concat, S = P + T) or [B, C] (slots); 1 = real token. */
  readonly mask: Value;
  /** Position ids [B, T]. */
  readonly positions: Value;
  /** Per-layer past (concat) or cache (slots). */
  readonly past?: readonly LayerKv[];
}

/** Options of {@link decoder}. */
export interface DecoderOptions {
  /**
   * Without a cache: run each layer's attention in this many blocks of consecutive query
   * positions ({@link blockedAttention}), a power of two; the graph then needs T ≥ this many
   * positions ({@link queryBlocksFit}). Default 1 (whole).
   */
  readonly queryBlocks?: number;
}

/** Whether n is a power of two (1, 2, 4, …). */
const isPowerOfTwo = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;

/**
 * Whether a row of T positions can be cut into n query blocks: n a power of two, and no block
 * empty (T ≥ n).
 *
 * @param length T.
 * @param blocks n.
 * @returns True when the blocks exist and each has at least one position.
 * @example
 * ```ts
 * queryBlocksFit(2048, 16); // true: 16 × 128
 * queryBlocksFit(13, 8); // true: 2, 2, 2, 1, 2, 1, 2, 1
 * queryBlocksFit(6, 8); // false: two would be empty
 * queryBlocksFit(12, 3); // false: not a power of two
 * ```
 */
export function queryBlocksFit(length: number, blocks: number): boolean {
  return isPowerOfTwo(blocks) && blocks <= length;
}

function checkQueryBlocks(blocks: number): number {
  if (!isPowerOfTwo(blocks)) {
    throw new Error(`decoder(): queryBlocks is ${blocks}; expected a power of two (1, 2, 4, …)`);
  }
  return blocks;
}

/**
 * The decoder: embeddings, blocks, final norm. Logits are left to the caller so that it can
 * project only the rows it needs (the output head is the largest matrix of a real model).
 *
 * @param b The graph being built.
 * @param config The architecture.
 * @param w Weights.
 * @param inputs Ids, mask, positions and past.
 * @param cache How earlier tokens are supplied.
 * @param options Query blocks of the attention (no cache only; default none).
 * @returns Final hidden states, normalised ([B, T, D]; [B, D] for slots), and each layer's key/value output.
 */
export function decoder(
  b: GraphBuilder,
  config: Qwen2Config,
  w: Weights,
  inputs: ModelInputs,
  cache: CacheMode,
  options: DecoderOptions = {},
): { hidden: Value; kv: LayerKv[] } {
  const { hiddenSize: D, headDim: E } = config;
  let x = b.gather(weight(w, "model.embed_tokens.weight"), inputs.ids); // [B, T, D]
  let rope = ropeAngles(b, config, inputs.positions); // [B, T, 1, E]
  if (cache === "slots") {
    // Decode feeds one token per sequence: keep the residual stream 2-D, [B, D].
    x = b.reshape(x, [-1, D]);
    rope = { cos: b.reshape(rope.cos, [0, 1, E]), sin: b.reshape(rope.sin, [0, 1, E]) };
  }
  const scale = b.scalar(1 / Math.sqrt(E));
  const ropeQ = { cos: b.mul(rope.cos, scale), sin: b.mul(rope.sin, scale) };
  const blocks = cache === "none" ? checkQueryBlocks(options.queryBlocks ?? 1) : 1;
  const G = config.numHeads / config.numKvHeads;
  const bias = cache === "slots"
    ? slotBias(b, inputs.mask)
    : causalBias(b, inputs.mask, inputs.positions, blocks > 1 ? 1 : G);
  // Query blocks: the bias [B, 1, T, S] cut along T like the queries, [B, 1, c_k, S] each.
  const biasBlocks = blocks === 1 ? undefined : halvings(b, bias, 2, blocks);
  const kv: LayerKv[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const past = inputs.past?.[i];
    const r = block(b, x, w, i, { config, rope, ropeQ, bias, biasBlocks, cache, past });
    x = r.out;
    kv.push(r.kv);
  }
  return { hidden: rmsNorm(b, x, weight(w, "model.norm.weight"), config.rmsNormEps), kv };
}

/**
 * Output head: logits = h Wᵀ with W = `lm_head.weight`, or the embedding when tied.
 *
 * @param b The graph being built.
 * @param config The architecture.
 * @param w Weights.
 * @param hidden [..., D].
 * @returns [..., V].
 */
export function lmHead(b: GraphBuilder, config: Qwen2Config, w: Weights, hidden: Value): Value {
  const name = config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  return linear(b, hidden, weight(w, name));
}

// ----- graphs -------------------------------------------------------------------------------------

/** Options of {@link buildDecoderGraph}. */
export interface DecoderGraphOptions {
  /** How earlier tokens are supplied (see {@link CacheMode}). */
  cache: CacheMode;
  /** `last`: logits [B, V] of the last position only; `all`: [B, T, V]. */
  logits: "last" | "all";
  /**
   * Dtype of `input_ids`, `attention_mask` and `position_ids`: int32 inside the engine (the only
   * integer type the WebGPU EP moves and indexes with), int64 for the exported model (the
   * Optimum / genai convention). Default int32.
   */
  indexDtype?: "int32" | "int64";
  /** Graph name (default from the mode). */
  name?: string;
  /** Declare the weights yourself (e.g. as initializers for export); default graph inputs. */
  weights?: (b: GraphBuilder) => Weights;
}

/** Names of the cache inputs and outputs of each mode. */
export const KV_NAMES: Readonly<
  Record<
    CacheMode,
    {
      input?: (i: number, kv: "key" | "value") => string;
      output: (i: number, kv: "key" | "value") => string;
    }
  >
> = {
  none: { output: (i, kv) => `present.${i}.${kv}` },
  concat: {
    input: (i, kv) => `past_key_values.${i}.${kv}`,
    output: (i, kv) => `present.${i}.${kv}`,
  },
  slots: { input: (i, kv) => `cache.${i}.${kv}`, output: (i, kv) => `new.${i}.${kv}` },
};

/**
 * A forward graph with a KV cache interface: prefill (`cache: "none"`), HF-style decode with
 * past → present (`"concat"`), or host-cache decode (`"slots"`).
 *
 * Inputs: `input_ids` [batch, seq]; `attention_mask` [batch, keys] (none: keys = seq; concat:
 * past + seq; slots: the cache's slots, without the new token); `position_ids` [batch, seq] (all
 * three of the index dtype); cache inputs per {@link KV_NAMES}; then the weights by HF name.
 * Outputs: `logits`, then per layer the key and value outputs per {@link KV_NAMES}.
 *
 * @param config The architecture.
 * @param options Cache mode, logits rows, index dtype.
 * @returns The graph.
 */
export function buildDecoderGraph(config: Qwen2Config, options: DecoderGraphOptions): Graph {
  const { cache } = options;
  const b = new GraphBuilder(options.name ?? `qwen2_${cache}_${options.logits}`);
  const idx: DType = options.indexDtype ?? "int32";
  const seq = cache === "slots" ? 1 : "sequence_length";
  const keys: Shape = cache === "none"
    ? ["batch_size", "sequence_length"]
    : cache === "concat"
    ? ["batch_size", "past_sequence_length + sequence_length"]
    : ["batch_size", "cache_slots"];
  const ids = b.input("input_ids", idx, ["batch_size", seq]);
  const mask = b.input("attention_mask", idx, keys);
  const positions = b.input("position_ids", idx, ["batch_size", seq]);
  const { numKvHeads: K, headDim: E } = config;
  const pastLen = cache === "concat" ? "past_sequence_length" : "cache_slots";
  const past: LayerKv[] | undefined = KV_NAMES[cache].input &&
    Array.from({ length: config.numLayers }, (_, i) => ({
      key: b.input(KV_NAMES[cache].input!(i, "key"), "float32", ["batch_size", K, pastLen, E]),
      value: b.input(KV_NAMES[cache].input!(i, "value"), "float32", ["batch_size", K, pastLen, E]),
    }));
  const w = options.weights ? options.weights(b) : declareWeights(b, config);
  const { hidden, kv } = decoder(b, config, w, { ids, mask, positions, past }, cache);
  const rows = cache === "slots" || options.logits === "all"
    ? hidden // [B, D] (slots: one token) or [B, T, D]
    : b.squeeze(b.slice(hidden, [-1], [2 ** 31 - 1], [1]), [1]); // [B, D]
  b.output(lmHead(b, config, w, rows), "logits");
  kv.forEach((l, i) => {
    b.output(l.key, KV_NAMES[cache].output(i, "key"));
    b.output(l.value, KV_NAMES[cache].output(i, "value"));
  });
  return b.build();
}

/**
 * The next-token targets of full sequences: token ids 1 … T−1 of each row.
 *
 * The WebGPU EP has no Slice kernel for integer tensors (int32 or int64; measured in 1.30), so the
 * shift runs on a float32 copy of the ids, which holds every id below 2²⁴ exactly; both Casts and
 * the Slice stay on the GPU.
 *
 * @param b The graph being built.
 * @param config The architecture (its vocabulary must fit float32's exact integers).
 * @param ids Token ids [B, T], int32 or int64.
 * @returns [B, T−1], of the dtype of `ids`.
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { nextTokenIds, tinyPolicyConfig } from "./transformer.ts";
 * const b = new GraphBuilder("targets");
 * const ids = b.input("input_ids", "int32", ["batch_size", "sequence_length"]);
 * nextTokenIds(b, tinyPolicyConfig(32), ids).dtype; // "int32"
 * ```
 */
export function nextTokenIds(b: GraphBuilder, config: Qwen2Config, ids: Value): Value {
  if (config.vocabSize > 2 ** 24) {
    throw new Error(
      `nextTokenIds(): vocabulary of ${config.vocabSize} ids; the float32 shift is exact only up ` +
        `to ${2 ** 24}`,
    );
  }
  const shifted = b.slice(b.cast(ids, "float32"), [1], [2 ** 31 - 1], [1]); // [B, T−1]
  return b.cast(shifted, ids.dtype);
}

/** What a loss builder receives: the graph, and the model's next-token predictions. */
export interface LossInputs {
  /** The graph being built (declare extra inputs, e.g. advantages, with `b.input`). */
  readonly b: GraphBuilder;
  readonly config: Qwen2Config;
  /** Token ids [B, T] int32 (graph input `input_ids`). */
  readonly ids: Value;
  /** Attention mask [B, T] int32 (graph input `attention_mask`). */
  readonly mask: Value;
  /**
   * Logits at positions 0 … T−2, predicting tokens 1 … T−1: [B, T−1, V]. Emitted when first
   * read, so a loss that works from `hidden` in chunks never holds them.
   */
  readonly logits: Value;
  /** The predicted tokens 1 … T−1: [B, T−1] int32 (see {@link nextTokenIds}). */
  readonly targets: Value;
  /** Final normalised hidden states at positions 0 … T−2: [B, T−1, D]. */
  readonly hidden: Value;
  /** The output head's weight [V, D] (`lm_head.weight`, or the tied embedding). */
  readonly headWeight: Value;
  /**
   * How a loss should chunk the head over positions (kernels/_chunk_head.ts), or null for
   * whole logits; see {@link buildLossGraph}.
   */
  readonly chunking: HeadChunking | null;
}

/** Builds a scalar loss from the model's predictions; may add inputs and extra outputs. */
export type LossBuilder = (inputs: LossInputs) => Value;

/**
 * The model over full sequences, without a cache: declares the inputs `input_ids`,
 * `attention_mask` and `position_ids` (all int32 [batch, seq]), then the weights, and returns the
 * logits at positions 0 … T−2 with the tokens 1 … T−1 they predict.
 *
 * @param b The graph being built.
 * @param config The architecture.
 * @param options Query blocks of the attention (the score graph's; default none).
 * @returns The ids and mask inputs, the logits [B, T−1, V] and the targets [B, T−1].
 */
export function nextTokenPredictions(
  b: GraphBuilder,
  config: Qwen2Config,
  options: DecoderOptions = {},
): Omit<LossInputs, "b" | "config" | "chunking"> {
  const ids = b.input("input_ids", "int32", ["batch_size", "sequence_length"]);
  const mask = b.input("attention_mask", "int32", ["batch_size", "sequence_length"]);
  const positions = b.input("position_ids", "int32", ["batch_size", "sequence_length"]);
  const w = declareWeights(b, config);
  const decoded = decoder(b, config, w, { ids, mask, positions }, "none", options);
  const hidden = b.slice(decoded.hidden, [0], [-1], [1]); // [B, T−1, D]
  const targets = nextTokenIds(b, config, ids); // [B, T−1]
  const headWeight = weight(
    w,
    config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight",
  );
  let logits: Value | undefined;
  return {
    ids,
    mask,
    targets,
    hidden,
    headWeight,
    get logits() {
      return (logits ??= lmHead(b, config, w, hidden)); // [B, T−1, V]
    },
  };
}

/**
 * A loss graph: the model over full sequences, then `loss(…)`, output as `loss`. Weights are
 * inputs named by HF name, so `buildTrainStep` (train_step.ts) can differentiate with respect to
 * them and apply AdamW in the same graph.
 *
 * @param config The architecture.
 * @param loss The loss builder (e.g. {@link nextTokenLoss}; the GRPO losses later).
 * @param options Graph name, head chunking.
 * @returns The graph (inputs `input_ids`, `attention_mask`, `position_ids`, all int32
 *   [batch, seq]; the loss builder's own; then the weights).
 */
export function buildLossGraph(
  config: Qwen2Config,
  loss: LossBuilder,
  options: LossGraphOptions = {},
): Graph {
  const b = new GraphBuilder(options.name ?? "qwen2_loss");
  const p = nextTokenPredictions(b, config);
  const chunking = options.chunking === undefined
    ? lossChunking(config.vocabSize, config.maxPositions)
    : options.chunking;
  // Not a spread: that would read (and so emit) the logits.
  const inputs: LossInputs = {
    b,
    config,
    ids: p.ids,
    mask: p.mask,
    targets: p.targets,
    hidden: p.hidden,
    headWeight: p.headWeight,
    chunking,
    get logits() {
      return p.logits;
    },
  };
  b.output(loss(inputs), "loss");
  return b.build();
}

/** Options of {@link buildLossGraph}. */
export interface LossGraphOptions {
  /** Graph name. */
  name?: string;
  /**
   * How a loss that supports it (the policy losses) chunks the output head over positions:
   * default `lossChunking(V, context)` of kernels/_chunk_head.ts (none below a 16,384-token
   * vocabulary; such a graph needs micro-batches of at least as many positions as chunks);
   * null for whole logits.
   */
  chunking?: HeadChunking | null;
}

/**
 * Next-token cross-entropy for supervised fine-tuning, averaged over the tokens selected by the
 * graph input `loss_mask` float32 [B, T] (1 = learn to predict this token; column 0 is ignored,
 * nothing predicts it): loss = Σ mask · (logsumexp(z) − z[target]) / max(Σ mask, 1).
 *
 * @param inputs From {@link buildLossGraph}.
 * @returns The scalar loss.
 */
export function nextTokenLoss(inputs: LossInputs): Value {
  const { b, logits, targets } = inputs;
  const lossMask = b.input("loss_mask", "float32", ["batch_size", "sequence_length"]);
  const weight = b.slice(lossMask, [1], [2 ** 31 - 1], [1]); // [B, T−1]
  const picked = b.squeeze(b.gatherElements(logits, b.unsqueeze(targets, [2]), 2), [2]);
  const nll = b.sub(b.reduceLogSumExp(logits, [2], false), picked); // [B, T−1]
  const total = b.reduceSum(b.mul(nll, weight), [0, 1], false);
  return b.div(total, b.max(b.reduceSum(weight, [0, 1], false), b.scalar(1)));
}
