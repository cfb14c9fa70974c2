/**
 * Cost estimates of the `base`, `score`, `train` and `evaluate` nodes from the config and the
 * model size alone, for `--dry-run` (the `estimate` hook of `defineStage`). They are sizing
 * aids, not measurements: every response is counted at its token limit, prompts at an assumed
 * length, and FLOPs are those of the matrix products (`forwardFlops` in kernels/transformer.ts).
 *
 * The model: `base.model.*` with the built-in task's character vocabulary (`base.kind: sft`),
 * else the `config.json` of `base.checkpoint`; when that folder is not there yet, the
 * architecture of a known checkpoint named by the folder (the two of the SENT paper's tables,
 * {@link KNOWN_ARCHITECTURES}), so a plan can be sized before the download.
 *
 * With P prompt tokens, R response tokens (the limit) and forward(tokens, keys, logit rows) the
 * FLOPs of one forward pass, per sequence:
 *
 * ```
 * sample  = forward(P, P/2, 1) + forward(R, P + R/2, R)       prefill, then R decode steps
 * score   = forward(P + R, (P + R)/2, R)                      one teacher-forced pass
 * update  = 3 · forward(P + R, (P + R)/2, P + R)              forward + backward ≈ 3 forwards
 * ```
 *
 * - base: sft = steps × batch × seqLen tokens at `update` cost; a checkpoint import is a copy (0).
 * - score: problems × M sequences, sample + score.
 * - train (per node): rollout steps × prompts × G sequences, each sample + score (π_old) +
 *   score (reference) + one more score with `loss.statScope: mini` + update. Steps follow the
 *   plan: ⌊bucket / prompts⌋ × epochs per bucket (the curriculum's buckets cut evenly).
 * - evaluate (per node): per eval set, problems × (n + 1 greedy) sequences, sample only.
 *
 * The four stages import this module, so it is part of their code fingerprint: an edit here
 * reruns them, as an edit of the stage files would.
 *
 * Tokens count each sequence's P + R once per node. Assumed prompt lengths
 * ({@link PROMPT_TOKENS}): 16 for the built-in task (its problems are about 12 characters), 256
 * for registered datasets (a DAPO-form or `\boxed{}` prompt around a competition problem).
 *
 * @example
 * ```ts
 * import { estimateScore } from "./_estimate.ts";
 * const config = {
 *   base: { kind: "sft", model: { width: 192, layers: 4, heads: 4, kvHeads: 1, ffn: 512, context: 128 } },
 *   data: { task: "aime-style", trainProblems: 1280 },
 *   score: { samples: 8, maxTokens: 40 },
 * };
 * estimateScore(config)?.tokens; // 1280 × 8 × (16 + 40) = 573440
 * ```
 *
 * @module
 */

import { REGISTRY } from "../data/registry.ts";
import { tinyAimeTokenizer } from "../data/tokenizer_char.ts";
import { forwardFlops, type Qwen2Config, qwen2ConfigFromHF } from "../kernels/transformer.ts";
import type { Params, StageEstimate } from "../pipeline/stage.ts";
import { TRAINING_METHODS } from "./_methods.ts";
import { KNOWN_MODELS } from "../kernels/known_models.ts";

/** Assumed prompt tokens: the built-in task, and registered datasets. */
export const PROMPT_TOKENS = { builtin: 16, registered: 256 } as const;

/**
 * `config.json` of the checkpoints the paper's tables use, by folder name (lower case), for
 * sizing a plan before the checkpoint is downloaded.
 */
export const KNOWN_ARCHITECTURES: Readonly<Record<string, Readonly<Record<string, unknown>>>> =
  KNOWN_MODELS;

type Config = Readonly<Record<string, unknown>>;

/** The value at a dotted key path, or undefined. */
function at(config: Config, path: string): unknown {
  let v: unknown = config;
  for (const part of path.split(".")) v = (v as Record<string, unknown> | undefined)?.[part];
  return v;
}

const num = (config: Config, path: string): number => Number(at(config, path));

/**
 * The architecture a run trains, or null when it cannot be told from the config.
 *
 * @param config The resolved config.
 * @returns The architecture, or null.
 */
export function runArchitecture(config: Config): Qwen2Config | null {
  if (at(config, "base.kind") === "sft") {
    const m = (at(config, "base.model") ?? {}) as Record<string, number>;
    return qwen2ConfigFromHF({
      vocab_size: tinyAimeTokenizer().vocabSize,
      hidden_size: m.width,
      intermediate_size: m.ffn,
      num_hidden_layers: m.layers,
      num_attention_heads: m.heads,
      num_key_value_heads: m.kvHeads,
      max_position_embeddings: m.context,
      tie_word_embeddings: true,
    });
  }
  const dir = String(at(config, "base.checkpoint") ?? "");
  if (dir === "") return null;
  let json: unknown;
  try {
    json = JSON.parse(Deno.readTextFileSync(`${dir}/config.json`));
  } catch {
    json = KNOWN_ARCHITECTURES[dir.replace(/\/+$/, "").split("/").pop()!.toLowerCase()];
  }
  return json === undefined ? null : qwen2ConfigFromHF(json);
}

/** Prompt tokens assumed for a dataset name. */
function promptTokens(dataset: string): number {
  return REGISTRY.some((e) => e.name === dataset)
    ? PROMPT_TOKENS.registered
    : PROMPT_TOKENS.builtin;
}

/** FLOPs of sampling R tokens after a P-token prompt (prefill, then one step per token). */
function sampleFlops(c: Qwen2Config, P: number, R: number): number {
  return forwardFlops(c, { tokens: P, keys: P / 2, logitRows: 1 }) +
    forwardFlops(c, { tokens: R, keys: P + R / 2, logitRows: R });
}

/** FLOPs of one teacher-forced pass over P + R tokens, logits for the response. */
function scoreFlops(c: Qwen2Config, P: number, R: number): number {
  return forwardFlops(c, { tokens: P + R, keys: (P + R) / 2, logitRows: R });
}

/** FLOPs of one training pass (forward and backward ≈ 3 forwards) over P + R tokens. */
function updateFlops(c: Qwen2Config, P: number, R: number): number {
  return 3 * forwardFlops(c, { tokens: P + R, keys: (P + R) / 2, logitRows: P + R });
}

/**
 * Cost of the `base` node: the warm-up's training passes, or nothing for an import.
 *
 * @param config The resolved config.
 * @returns Tokens and FLOPs, or null when the model size is unknown.
 */
export function estimateBase(config: Config): StageEstimate | null {
  if (at(config, "base.kind") !== "sft") return { tokens: 0, flops: 0 };
  const c = runArchitecture(config);
  if (c === null) return null;
  const steps = num(config, "base.warmup.steps");
  const batch = num(config, "base.warmup.batchSize");
  const L = num(config, "base.warmup.seqLen");
  return { tokens: steps * batch * L, flops: steps * batch * updateFlops(c, 0, L) };
}

/**
 * Cost of the `score` node: M samples per training problem, and one scoring pass over them.
 *
 * @param config The resolved config.
 * @returns Tokens and FLOPs, or null when the model size is unknown.
 */
export function estimateScore(config: Config): StageEstimate | null {
  const c = runArchitecture(config);
  if (c === null) return null;
  const rows = num(config, "data.trainProblems") * num(config, "score.samples");
  const P = promptTokens(String(at(config, "data.task")));
  const R = num(config, "score.maxTokens");
  return { tokens: rows * (P + R), flops: rows * (sampleFlops(c, P, R) + scoreFlops(c, P, R)) };
}

/**
 * Rollout steps of one training run: the plan's ⌊bucket / prompts⌋ × epochs per bucket, with
 * the curriculum's buckets taken as equal shares of the problems.
 *
 * @param config The resolved config.
 * @param method A training method (curriculum methods train bucket by bucket).
 * @returns The number of rollout steps.
 */
export function trainSteps(config: Config, method: string): number {
  const problems = num(config, "data.trainProblems");
  const perStep = num(config, "train.promptsPerStep");
  if (!TRAINING_METHODS[method]?.curriculum) {
    return Math.floor(problems / perStep) * num(config, "train.epochs");
  }
  const buckets = num(config, "curriculum.buckets");
  const size = Math.floor(problems / buckets);
  return buckets * Math.floor(size / perStep) * num(config, "curriculum.epochsPerStage");
}

/**
 * Cost of one `train[method, seed]` node: every rollout step's sampling, its π_old and
 * reference scoring passes (one more with mini-batch scope) and its update.
 *
 * @param config The resolved config.
 * @param params The node's parameters (`method`).
 * @returns Tokens and FLOPs, or null when the model size is unknown.
 */
export function estimateTrain(config: Config, params: Params): StageEstimate | null {
  const c = runArchitecture(config);
  if (c === null) return null;
  const rows = trainSteps(config, String(params.method)) * num(config, "train.promptsPerStep") *
    num(config, "train.groupSize");
  const P = promptTokens(String(at(config, "data.task")));
  const R = num(config, "train.maxResponseTokens");
  const scores = at(config, "loss.statScope") === "mini" ? 3 : 2;
  const perRow = sampleFlops(c, P, R) + scores * scoreFlops(c, P, R) + updateFlops(c, P, R);
  return { tokens: rows * (P + R), flops: rows * perRow };
}

/** Problems of an eval set: a registered benchmark's rows, or `data.evalProblems`. */
function evalProblems(config: Config, set: string): number {
  const entry = REGISTRY.find((e) => e.name === set);
  return entry?.rows ?? num(config, "data.evalProblems");
}

/**
 * Cost of one `evaluate[policy, seed]` node: n samples and one greedy decode per problem of
 * every eval set.
 *
 * @param config The resolved config.
 * @returns Tokens and FLOPs, or null when the model size is unknown.
 */
export function estimateEvaluate(config: Config): StageEstimate | null {
  const c = runArchitecture(config);
  if (c === null) return null;
  const R = num(config, "evaluate.maxTokens");
  let tokens = 0, flops = 0;
  for (const set of (at(config, "data.evalSets") ?? []) as string[]) {
    const rows = evalProblems(config, set) * (num(config, "evaluate.samples") + 1);
    const P = promptTokens(set);
    tokens += rows * (P + R);
    flops += rows * sampleFlops(c, P, R);
  }
  return { tokens, flops };
}
