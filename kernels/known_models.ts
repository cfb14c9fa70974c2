/**
 * Architectures (their Hugging Face `config.json` fields) of the checkpoints the paper trains,
 * so that benchmarks can build them with random weights and a plan can be sized before the
 * download. One place for both: `kernels/bench_model.ts` and `stages/_estimate.ts` read them.
 *
 * @example
 * ```ts
 * import { DEEPSEEK_R1_DISTILL_QWEN_1_5B } from "./known_models.ts";
 * import { parameterCount, qwen2ConfigFromHF } from "./transformer.ts";
 * parameterCount(qwen2ConfigFromHF(DEEPSEEK_R1_DISTILL_QWEN_1_5B)) > 1.7e9; // true
 * ```
 *
 * @module
 */

/** deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B (its config.json). */
export const DEEPSEEK_R1_DISTILL_QWEN_1_5B = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 151936,
  hidden_size: 1536,
  intermediate_size: 8960,
  num_hidden_layers: 28,
  num_attention_heads: 12,
  num_key_value_heads: 2,
  max_position_embeddings: 131072,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  hidden_act: "silu",
  use_sliding_window: false,
  bos_token_id: 151646,
  eos_token_id: 151643,
} as const;

/** Qwen/Qwen2.5-Math-7B (the architecture fields of its config.json). */
export const QWEN2_5_MATH_7B = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 152064,
  hidden_size: 3584,
  intermediate_size: 18944,
  num_hidden_layers: 28,
  num_attention_heads: 28,
  num_key_value_heads: 4,
  max_position_embeddings: 4096,
  rope_theta: 10000,
  tie_word_embeddings: false,
} as const;

/** The known architectures by lower-case checkpoint folder name. */
export const KNOWN_MODELS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  "deepseek-r1-distill-qwen-1.5b": DEEPSEEK_R1_DISTILL_QWEN_1_5B,
  "qwen2.5-math-7b": QWEN2_5_MATH_7B,
};
