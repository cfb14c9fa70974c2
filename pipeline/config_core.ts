/**
 * Core config keys: the sections every pipeline has (data → base policy → semantic-entropy
 * scoring → curriculum → GRPO training → evaluation → report, plus the runtime). Defaults live
 * in `presets/tiny.yaml`, the default preset; keys here have no default, so every preset states
 * them (a preset can start with `extends: tiny` and change a few). Stages add their own keys
 * with `registerConfigSection` (config_schema.ts).
 *
 * The tiny preset is sized so that the whole pipeline runs on a laptop CPU (its comments give
 * the budget); the GRPO settings that carry over unchanged keep the values of the SENT paper and
 * its verl reference implementation. Key docs quote those values as "(§7: 256)", by the part of
 * the method they belong to: §3 the GRPO core (reward, clipped surrogate, KL to the reference),
 * §4 the policy-loss variants, §5 semantic-entropy scoring, §6 the curriculum, §7 training
 * hyperparameters, §8 evaluation, §10 choices the paper leaves open (Q3: how buckets are cut).
 *
 * @module
 */

import { DEFAULT_GRADER_MODE, GRADER_MODE_NAMES } from "../data/grade/modes.ts";
import { REGISTRY } from "../data/registry.ts";
import { SPLITS } from "../data/tiny_aime/mod.ts";
import type { SchemaTable } from "./config_schema.ts";

/** Datasets a run can load: the built-in tiny-AIME splits and the registered benchmarks. */
const DATASET_NAMES: readonly string[] = [...Object.keys(SPLITS), ...REGISTRY.map((e) => e.name)];

/**
 * Names of the training methods: the columns of the paper's Tables I/II and two ablations that
 * separate SENT's loss from its curriculum (stages/_methods.ts says what each one is).
 */
export const METHODS = [
  "grpo",
  "entropy_bonus",
  "entropy_adv",
  "high_entropy_mask",
  "clip_cov",
  "kl_cov",
  "high_en",
  "sent",
  "sent_no_curriculum",
  "grpo_curriculum",
] as const;

/** Key path → spec for the core sections. */
export const CORE_SCHEMA: SchemaTable = {
  // ── data: the task and its splits ────────────────────────────────────────────────────────
  "data.task": {
    type: "enum",
    values: ["aime-style", ...DATASET_NAMES],
    doc:
      'Training set: "aime-style" is the built-in synthetic task (integer answers 0–999); any other ' +
      "value names a registered dataset (data/registry.ts, e.g. math_train) fetched into data.dir.",
  },
  "data.seed": {
    type: "int",
    min: 0,
    doc: "Seed of the problem generator; train and eval splits are disjoint for every seed.",
  },
  "data.trainProblems": {
    type: "int",
    min: 1,
    doc: "Training problems generated (and scored for semantic entropy).",
  },
  "data.evalProblems": {
    type: "int",
    min: 1,
    default: 256,
    doc:
      "Problems in each built-in eval set (registered benchmarks are used whole); 256 keeps the " +
      "standard error of an Avg@8 near 35 % below 2 points.",
  },
  "data.dir": {
    type: "string",
    path: "read",
    default: ".sent/datasets",
    doc: "Folder of registered datasets, as written by `deno task fetch-data`.",
  },
  "data.verify": {
    type: "boolean",
    default: true,
    doc: "Check each registered file's sha256 and row count against the registry before using " +
      "it; false accepts other files under the registered names (test fixtures, an edited copy).",
  },
  "data.evalSets": {
    type: "enum[]",
    values: DATASET_NAMES,
    unique: true,
    minItems: 1,
    doc: "Held-out eval sets; at tiny scale two synthetic sets play AIME24 and AIME25.",
  },
  "data.tinyAime.operandMax": {
    type: "int",
    min: 2,
    default: 10,
    doc: "Built-in task: largest addend, subtrahend, starting value, unknown x and modulus. With " +
      "10 the default warm-up leaves the tiny policy near 38 % Avg@8; with 20, near 15 %.",
  },
  "data.tinyAime.multiplierMax": {
    type: "int",
    min: 2,
    default: 5,
    doc: "Built-in task: largest multiplier and divisor, and largest base of a power.",
  },
  "data.tinyAime.steps": {
    type: "int[]",
    min: 1,
    minItems: 1,
    default: [1, 2],
    doc: "Built-in task: step counts a problem may have (trace lines before `#### N`).",
  },
  "data.tinyAime.stepWeights": {
    type: "number[]",
    min: 0,
    minItems: 1,
    default: [1, 2],
    doc: "Built-in task: relative weight of each entry of data.tinyAime.steps. Problems are " +
      "distinct, so once a step count's problems run out (about 600 one-step ones with the " +
      "defaults) the others fill in.",
  },
  "data.tinyAime.families": {
    type: "enum[]",
    values: ["chain", "linear", "power"],
    minItems: 1,
    default: ["chain", "linear", "power"],
    doc: "Built-in task: problem families: chained arithmetic, linear equations in x, modular " +
      "powers (data/tiny_aime/README.md).",
  },

  // ── base: the policy before RL (SFT warm-up of the tiny model, or an HF checkpoint) ──────
  "base.kind": {
    type: "enum",
    values: ["sft", "checkpoint"],
    doc: '"sft" trains the tiny policy on solution traces; "checkpoint" imports base.checkpoint.',
  },
  "base.checkpoint": {
    type: "string",
    path: "read",
    doc:
      'Hugging Face checkpoint folder (config.json + safetensors) when base.kind is "checkpoint".',
  },
  "base.model.width": { type: "int", min: 8, doc: "Hidden size of the tiny policy." },
  "base.model.layers": { type: "int", min: 1, doc: "Transformer blocks." },
  "base.model.heads": { type: "int", min: 1, doc: "Attention heads (width must divide evenly)." },
  "base.model.kvHeads": {
    type: "int",
    min: 1,
    default: 1,
    doc:
      "Key/value heads shared by the query heads (must divide heads); 1 (multi-query attention) " +
      "makes batched decoding's KV cache `heads` times smaller, which is what bounds it on a CPU.",
  },
  "base.model.ffn": { type: "int", min: 8, doc: "SwiGLU inner size." },
  "base.model.context": { type: "int", min: 16, doc: "Maximum sequence length in tokens." },
  "base.warmup.steps": { type: "int", min: 0, doc: "SFT optimizer steps (0 skips warm-up)." },
  "base.warmup.batchSize": { type: "int", min: 1, doc: "Sequences per SFT step." },
  "base.warmup.seqLen": {
    type: "int",
    min: 8,
    doc:
      "Longest SFT sequence in tokens (<bos> + prompt + trace + <eos>); a batch is padded to its " +
      "longest row, and a longer row is an error.",
  },
  "base.warmup.lr": {
    type: "number",
    min: 0,
    doc: "Peak SFT learning rate (AdamW); one cosine schedule takes it to 0 at the last step.",
  },
  "base.warmup.weightDecay": { type: "number", min: 0, doc: "SFT AdamW weight decay." },
  "base.warmup.seed": {
    type: "int",
    min: 0,
    default: 0,
    doc: "Seed of the initial weights, the batch order and the demonstration noise.",
  },
  "base.warmup.noise": {
    type: "number",
    min: 0,
    max: 1,
    default: 0.4,
    doc: "Probability that a trace, each time the warm-up uses it, has one step's result shifted " +
      "(later steps and `#### N` follow from it). Without noise the tiny policy memorises its " +
      "traces and is nearly always all right or all wrong on a problem: little for GRPO to use.",
  },
  "base.warmup.noiseMax": {
    type: "int",
    min: 1,
    default: 9,
    doc: "Largest shift of a corrupted step's result: shifts are ±1 … noiseMax.",
  },
  "base.warmup.logEvery": {
    type: "int",
    min: 1,
    default: 10,
    doc: "Steps between rows of the loss curve (loss, lr, tokens/s).",
  },
  "base.warmup.checkpointEvery": {
    type: "int",
    min: 1,
    default: 100,
    doc: "Steps between scratch checkpoints; a killed warm-up resumes from the last one.",
  },

  // ── score: semantic entropy of each training problem (§5) ──────────────────────
  "score.samples": {
    type: "int",
    min: 2,
    doc: "Responses M sampled per problem to cluster by answer; 8 = the GRPO group size (§5).",
  },
  "score.temperature": { type: "number", min: 0, doc: "Sampling temperature (§5: 1.0)." },
  "score.topP": { type: "number", min: 0, max: 1, doc: "Nucleus mass (§5: 1.0 = off)." },
  "score.maxTokens": { type: "int", min: 1, doc: "Response token limit while scoring." },
  "score.seed": {
    type: "int",
    min: 0,
    default: 0,
    doc: "Seed of the scoring samples (each (problem, sample) has its own counter stream).",
  },
  "score.batchSize": {
    type: "int",
    min: 1,
    max: 4096,
    default: 128,
    doc: "Sequences generated and scored per batch (a speed knob: results do not depend on it).",
  },
  "score.shards": {
    neutral: true,
    type: "int",
    min: 1,
    default: 1,
    doc: "Shards the (problem, sample) requests are split into, each its own cached artifact run " +
      "as its own task (--jobs N workers, SLURM array tasks), merged into the same bytes as one " +
      "piece; not part of the cache key. 1 runs the stage whole.",
  },

  // ── curriculum: order by semantic entropy and split into buckets (§6) ──────────
  "curriculum.buckets": {
    type: "int",
    min: 1,
    doc: "Buckets S trained in order, low SE first; the paper's scripts use 2.",
  },
  "curriculum.split": {
    type: "enum",
    values: ["quantiles", "thresholds"],
    doc: "Equal-count quantiles (S = 2 splits at the median SE, §10 Q3) or curriculum.thresholds.",
  },
  "curriculum.thresholds": {
    type: "number[]",
    min: 0,
    doc: 'S − 1 ascending SE cut points in nats, used when curriculum.split is "thresholds".',
  },
  "curriculum.epochsPerStage": {
    type: "int",
    min: 1,
    doc:
      "Epochs over each bucket; equal to train.epochs gives curriculum and baselines equal compute.",
  },
  "curriculum.seed": {
    type: "int",
    min: 0,
    default: 0,
    doc: "Seed of the shuffle that orders problems of equal semantic entropy (many have SE = 0).",
  },
  "curriculum.resetReference": {
    type: "boolean",
    doc:
      "Reset the KL reference policy to each stage's initial weights (faithful to the repo, §6).",
  },

  // ── train: GRPO-family RL, one node per (method, seed) (§3–4, §7) ──────────────
  "train.methods": {
    type: "enum[]",
    values: METHODS,
    minItems: 1,
    doc: "Policy-loss variants to train; each × runtime.seeds is one train node.",
  },
  "train.epochs": {
    type: "int",
    min: 1,
    doc: "Epochs over the training problems (no curriculum).",
  },
  "train.promptsPerStep": { type: "int", min: 1, doc: "Prompts per rollout step (§7: 256)." },
  "train.groupSize": { type: "int", min: 2, doc: "Responses G per prompt (§7: 8)." },
  "train.miniBatches": {
    type: "int",
    min: 2,
    doc:
      "Optimizer steps per rollout step (§7: 256 prompts / 128 per mini-batch = 2). At least 2: " +
      "with one, the |log r| penalties of SENT and KL-Cov have zero gradient (r = 1).",
  },
  "train.microBatchSize": {
    type: "int",
    min: 1,
    max: 4096,
    default: 4,
    doc: "Responses per micro-batch: gradients of a mini-batch's micro-batches are summed before " +
      "one optimizer step; with loss.statScope micro every selection and token-mean is taken " +
      "per micro-batch (the reference implementation: 4 per GPU).",
  },
  "train.lr": {
    type: "number",
    min: 0,
    doc: "AdamW learning rate, constant. §7 uses 1e-6 for 1.5B; a 2M-parameter policy needs more.",
  },
  "train.weightDecay": { type: "number", min: 0, doc: "AdamW weight decay (§7: 0.01)." },
  "train.gradClip": { type: "number", min: 0, doc: "Global gradient-norm clip (§7: 1.0)." },
  "train.adamBeta1": { type: "number", min: 0, max: 1, doc: "AdamW β1 (§7: 0.9)." },
  "train.adamBeta2": { type: "number", min: 0, max: 1, doc: "AdamW β2 (§7: 0.999)." },
  "train.klCoef": { type: "number", min: 0, doc: "k3 KL-to-reference coefficient (§3.5: 0.001)." },
  "train.clipLow": { type: "number", min: 0, doc: "PPO clip ε below 1 (§3.3: 0.2)." },
  "train.clipHigh": { type: "number", min: 0, doc: "PPO clip ε above 1 (§3.3: 0.2)." },
  "train.temperature": { type: "number", min: 0, doc: "Rollout temperature (§7: 1.0)." },
  "train.topP": { type: "number", min: 0, max: 1, doc: "Rollout nucleus mass (§7: 1.0 = off)." },
  "train.maxResponseTokens": { type: "int", min: 1, doc: "Rollout response token limit." },
  "train.checkpointEvery": {
    type: "int",
    min: 1,
    doc: "Steps between scratch checkpoints; a killed run resumes from the last one.",
  },

  "train.batchSize": {
    type: "int",
    min: 1,
    max: 4096,
    default: 128,
    doc: "Rollout sequences generated per batch (a speed knob: results do not depend on it).",
  },

  // ── loss: options of the policy losses; each method reads only its own (kernels/losses.ts) ─
  "loss.statScope": {
    type: "enum",
    values: ["micro", "mini"],
    default: "micro",
    doc: "Where selections, covariance means and token-means are taken: per micro-batch (the " +
      "reference implementation) or over the whole mini-batch (the papers' formulas; one extra " +
      "no-grad scoring pass per mini-batch).",
  },
  "loss.aggMode": {
    type: "enum",
    values: ["token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"],
    default: "token-mean",
    doc: "How token losses become one number; token-mean in every SENT script and baseline.",
  },
  "loss.dualClipC": {
    type: "number",
    min: 1,
    default: 3,
    doc:
      "Dual-clip constant c of the PPO-clip methods: for A < 0 a token's loss is capped at −A·c.",
  },
  "loss.entropyCoef": {
    type: "number",
    min: 0,
    default: 0.001,
    doc: "c_H of entropy_bonus (w/ En): the loss subtracts c_H × the mean current-policy entropy.",
  },
  "loss.entropyAlpha": {
    type: "number",
    min: 0,
    default: 0.4,
    doc: "α of entropy_adv (w/ Adv): each token's advantage gains min(α·H_old, |A|/κ).",
  },
  "loss.kappa": {
    type: "number",
    min: 1,
    default: 2,
    doc: "κ of entropy_adv: the cap |A|/κ keeps the entropy bonus from flipping the sign of A.",
  },
  "loss.entropyTopRatio": {
    type: "number",
    min: 0,
    max: 1,
    default: 0.2,
    doc: "high_entropy_mask (w/ Mask): fraction of valid tokens trained, the highest-entropy ones.",
  },
  "loss.normalizer": {
    type: "enum",
    values: ["all", "selected"],
    default: "all",
    doc:
      "high_entropy_mask: divide the policy term by all valid tokens (the 80/20 paper's formula) " +
      "or by the selected ones only (5× the per-token weight at ratio 0.2).",
  },
  "loss.clipCovRatio": {
    type: "number",
    min: 0,
    max: 1,
    default: 0.0002,
    doc: "clip_cov (w/ Clip): fraction of valid tokens whose gradient is cut (at least one).",
  },
  "loss.clipCovLb": {
    type: "number",
    default: 1,
    doc: "clip_cov: lower bound of the covariance window the cut tokens are drawn from.",
  },
  "loss.clipCovUb": {
    type: "number",
    default: 5,
    doc: "clip_cov: upper bound of that window.",
  },
  "loss.klCovRatio": {
    type: "number",
    min: 0,
    max: 1,
    default: 0.0002,
    doc:
      "kl_cov, high_en, sent: fraction of candidate tokens penalised per covariance extreme (at " +
      "least one; with micro-batches of a few hundred tokens that is exactly one).",
  },
  "loss.ppoKlCoef": {
    type: "number",
    min: 0,
    default: 0.1,
    doc: "β of the |log r| penalty towards the rollout policy (kl_cov, high_en, sent; SENT puts " +
      "2β on the top-covariance and 0.5β on the bottom-covariance token).",
  },
  "loss.variant": {
    type: "enum",
    values: ["v2", "v2-literal", "v1", "paper"],
    default: "v2",
    doc: "SENT token rule: v2 (the published rule, boolean masking as intended), v2-literal (the " +
      "reference code's row-gathered covariances), v1 (β on every low-entropy token, mean over " +
      "them), paper (β on every low-entropy token plus 2β on the top-covariance ones).",
  },
  "loss.hiMult": {
    type: "number",
    min: 0,
    default: 2,
    doc: "SENT / High_En: β multiplier on the top-covariance tokens.",
  },
  "loss.loMult": {
    type: "number",
    min: 0,
    default: 0.5,
    doc: "SENT / High_En: β multiplier on the bottom-covariance tokens.",
  },

  // ── evaluate: Pass@k and Avg@k on the held-out sets (§8) ───────────────────────
  "evaluate.samples": {
    type: "int",
    min: 1,
    doc: "Samples n per problem; Pass@k uses the unbiased estimator for every k ≤ n.",
  },
  "evaluate.ks": { type: "int[]", min: 1, minItems: 1, doc: "k values reported (each ≤ n)." },
  "evaluate.temperature": { type: "number", min: 0, doc: "Sampling temperature (§8: 1.0)." },
  "evaluate.topP": { type: "number", min: 0, max: 1, doc: "Nucleus mass (§8: 1.0 = off)." },
  "evaluate.maxTokens": { type: "int", min: 1, doc: "Response token limit while evaluating." },
  "evaluate.baseTemperatures": {
    type: "number[]",
    min: 0,
    default: [0.5, 0.7],
    doc: "The base policy is also evaluated at these lower temperatures (rows base@t0.5, …): " +
      "does RL beat simply sharpening the base's distribution?",
  },
  "evaluate.batchSize": {
    type: "int",
    min: 1,
    max: 4096,
    default: 128,
    doc: "Sequences generated per batch (a speed knob: results do not depend on it).",
  },
  "evaluate.shards": {
    neutral: true,
    type: "int",
    min: 1,
    default: 1,
    doc:
      "Shards each evaluate node's requests (every set's samples and greedy decodes) are split " +
      "into, like score.shards; not part of the cache key. 1 runs each node whole.",
  },

  // ── grader: when an extracted answer counts as the gold one (§8) ───────────────────────
  "grader.mode": {
    type: "enum",
    values: GRADER_MODE_NAMES,
    default: DEFAULT_GRADER_MODE,
    doc: "Answer equivalence of every stage that grades (score, train, evaluate): lenient " +
      "compares values (0.5 equals \\frac{1}{2}); opencompass-v2 applies the string rules of the " +
      "paper's evaluation harness (§8), so its numbers compare with the paper's tables. " +
      "Evaluation records the mode beside its numbers.",
  },

  // ── report: figures, tables and provenance ───────────────────────────────────────────────
  "report.title": { type: "string", doc: "Title of the generated report." },
  "report.formats": {
    type: "enum[]",
    values: ["html", "svg", "png"],
    minItems: 1,
    doc: "Rendered outputs; html is a self-contained offline page.",
  },

  // ── executor: SLURM job options of --executor slurm ──────────────────────────────────────
  "executor.partition": {
    neutral: true,
    type: "string",
    default: "",
    doc: "SLURM partition of the jobs (sbatch --partition); empty: the cluster's default.",
  },
  "executor.time": {
    neutral: true,
    type: "string",
    default: "",
    doc: "Time limit of each array task (sbatch --time, e.g. 02:00:00); empty: the partition's.",
  },
  "executor.gpusPerTask": {
    neutral: true,
    type: "int",
    min: 0,
    default: 0,
    doc: "GPUs per array task (sbatch --gpus-per-task); 0 requests none.",
  },
  "executor.cpusPerTask": {
    neutral: true,
    type: "int",
    min: 1,
    default: 1,
    doc: "CPUs per array task (sbatch --cpus-per-task), which are also its ORT threads.",
  },
  "executor.maxRunning": {
    neutral: true,
    type: "int",
    min: 0,
    default: 0,
    doc: "Most array tasks running at once (sbatch --array=…%N); 0: as many as the cluster gives.",
  },
  "executor.sbatchFlags": {
    neutral: true,
    type: "string[]",
    default: [],
    doc: "More sbatch flags, passed as they are (e.g. [--account=lab, --qos=normal]).",
  },
  "executor.retries": {
    neutral: true,
    type: "int",
    min: 0,
    default: 2,
    doc: "Resubmissions of a failed or cancelled array task before the run fails, naming it.",
  },
  "executor.pollSeconds": {
    neutral: true,
    type: "number",
    min: 0.05,
    default: 5,
    doc: "Seconds between two polls of the jobs' states (squeue, then sacct).",
  },

  // ── runtime: where and how numbers are computed ──────────────────────────────────────────
  "runtime.device": {
    type: "enum",
    values: ["cpu", "webgpu", "cuda"],
    doc: "ONNX Runtime execution provider (also set by --device); part of the cache key of every " +
      "stage that runs ONNX Runtime, and checked at start-up.",
  },
  "runtime.dtype": {
    type: "enum",
    // float16 / bfloat16 compute is not implemented: refused here, before any stage runs.
    // Checkpoints stored in bf16 or f16 still load (their weights are widened to float32).
    values: ["float32"],
    doc: "Compute dtype of the policy: float32 only (float16 and bfloat16 compute are not " +
      "implemented; 16-bit checkpoints load as float32); part of the cache key of every stage " +
      "that runs ONNX Runtime.",
  },
  "runtime.threads": {
    type: "int",
    min: 0,
    doc: "Intra-op threads (0 = ORT's default). Bitwise CPU determinism holds per thread count.",
  },
  "runtime.seeds": {
    type: "int[]",
    min: 0,
    minItems: 1,
    doc: "Seeds of the method × seed fan-out; adding a seed runs only the new nodes.",
  },
};
