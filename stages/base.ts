/**
 * Stage `base`: the policy before RL.
 *
 * - `base.kind: sft` warms up a Qwen2-architecture character-level policy, built from the
 *   `base.model.*` keys, on the built-in task's traces (`train.jsonl` of the `dataset` stage):
 *   AdamW on next-token cross-entropy over the trace and `<eos>`, one cosine schedule from
 *   `base.warmup.lr` to 0, noisy demonstrations (`base.warmup.noise`), seeded throughout
 *   (`stages/_sft.ts` has the details). Checkpoints go to the scratch folder every
 *   `base.warmup.checkpointEvery` steps; a killed run resumes from the last one and ends with
 *   the same weights as an uninterrupted run.
 * - `base.kind: checkpoint` imports the Hugging Face checkpoint folder `base.checkpoint`
 *   (config.json + safetensors; pickle weights are refused): it is validated against the Qwen2
 *   architecture and copied with its tokenizer files. The import is cached by the folder's
 *   resolved path: after changing files in place, rerun with `stage base --force`.
 *
 * Artifact:
 * - `policy/`: an HF checkpoint folder (`config.json`, `model.safetensors`) plus
 *   `sent_policy.json`, the tokenizer / prompt / extraction descriptor; later stages open it
 *   with `loadStagePolicy` (`stages/_policy_io.ts`) and nothing else;
 * - `metrics.jsonl` (sft): the loss curve, one row every `base.warmup.logEvery` steps
 *   (step, loss, lr, tokensPerSecond, gradNorm, noisy);
 * - `summary.json`: kind, parameter count, steps, final loss, seconds, tokens.
 *
 * @module
 */

import { resolve } from "node:path";
import type { StageContext } from "../pipeline/stage.ts";
import { defineStage } from "../pipeline/stage.ts";
import type { ModelKeys, WarmupKeys } from "./_sft.ts";
import { estimateBase } from "./_estimate.ts";

/** The config slice this stage reads (a type alias: stage lists need an index signature). */
export type BaseConfig = {
  base: {
    /** "sft" (warm up the tiny policy) or "checkpoint" (import base.checkpoint). */
    kind: "sft" | "checkpoint";
    /** HF checkpoint folder (kind checkpoint only). */
    checkpoint?: string;
    /** Architecture (kind sft only). */
    model?: ModelKeys;
    /** Warm-up settings (kind sft only). */
    warmup?: WarmupKeys;
  };
  /** The training task (kind sft only: it must be the built-in one). */
  data?: { task: string };
};

/** The built-in task's name in `data.task`. */
const BUILTIN_TASK = "aime-style";

/**
 * The slice each kind depends on, so editing a key the kind ignores (the checkpoint path of an
 * sft run, the warm-up of an import) does not rerun the stage.
 */
function baseSlice(config: Record<string, unknown>): BaseConfig {
  const base = config.base as Required<BaseConfig["base"]>;
  const data = config.data as { task: string };
  if (base.kind === "checkpoint") {
    return { base: { kind: "checkpoint", checkpoint: resolvePath(base.checkpoint) } };
  }
  return {
    base: { kind: base.kind, model: base.model, warmup: base.warmup },
    data: { task: data.task },
  };
}

/** An absolute, normalised path (relative paths are taken from the working directory). */
function resolvePath(path: string): string {
  return path === "" ? "" : resolve(path);
}

/** What each kind does. */
const KINDS: Readonly<
  Record<BaseConfig["base"]["kind"], (ctx: StageContext<BaseConfig>) => Promise<void>>
> = {
  sft: warmUp,
  checkpoint: importCheckpoint,
};

export const base = defineStage<BaseConfig>({
  name: "base",
  module: import.meta.url,
  doc: "The policy before RL: the tiny policy warmed up on traces, or an imported HF checkpoint.",
  upstream: ["dataset"],
  configSlice: baseSlice,
  engine: true,
  estimate: estimateBase,
  async run(ctx) {
    await KINDS[ctx.config.base.kind](ctx);
  },
});

/** Write `summary.json` and merge its headline numbers into the manifest. */
async function writeSummary(
  ctx: StageContext<BaseConfig>,
  summary: Record<string, unknown>,
): Promise<void> {
  await Deno.writeTextFile(`${ctx.outDir}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  // Nested values (the model keys) stay in summary.json only.
  ctx.metrics.summary(Object.fromEntries(
    Object.entries(summary).filter(([, v]) => typeof v !== "object" || v === null),
  ));
}

// ----- kind sft -----------------------------------------------------------------------------

async function warmUp(ctx: StageContext<BaseConfig>): Promise<void> {
  const { tinyAimeTokenizer } = await import("../data/tokenizer_char.ts");
  const { initWeights, Policy } = await import("../kernels/policy.ts");
  const { parameterCount } = await import("../kernels/transformer.ts");
  const { policyConfigFromKeys, runWarmup } = await import("./_sft.ts");
  const { charPolicyDescriptor, POLICY_DIR } = await import("./_policy_io.ts");
  const { writeHfModelFolder } = await import("./_export.ts");
  const model = ctx.config.base.model!;
  const warmup = ctx.config.base.warmup!;
  const task = ctx.config.data!.task;
  if (task !== BUILTIN_TASK) {
    throw new Error(
      `base.kind is "sft", which warms up the character-level policy on the built-in task's ` +
        `traces, but data.task is "${task}"; use data.task=${BUILTIN_TASK}, or base.kind=checkpoint ` +
        "with a Hugging Face checkpoint in base.checkpoint",
    );
  }
  if (warmup.seqLen > model.context) {
    throw new Error(
      `base.warmup.seqLen is ${warmup.seqLen}, longer than base.model.context ` +
        `(${model.context}); expected seqLen ≤ context`,
    );
  }

  // ── setup ─────────────────────────────────────────────────────────────────────────────────
  const rows = (await ctx.input("dataset").readText("train.jsonl")).trim().split("\n")
    .map((line) => JSON.parse(line));
  const tokenizer = tinyAimeTokenizer();
  const config = policyConfigFromKeys(model, tokenizer.vocabSize);
  const params = parameterCount(config);
  ctx.log.info(
    `${(params / 1e6).toFixed(2)}M parameters; ${warmup.steps} steps × ${warmup.batchSize} ` +
      `sequences over ${rows.length} training rows`,
  );

  // ── warm-up ───────────────────────────────────────────────────────────────────────────────
  const bar = ctx.progress(warmup.steps, "warm-up steps");
  const result = await runWarmup(
    config,
    initWeights(config, { seed: warmup.seed }),
    rows,
    tokenizer,
    warmup,
    { device: ctx.device, threads: ctx.threads },
    {
      log: (row) => ctx.metrics.log(row),
      tick: () => bar.tick(),
      scratchDir: ctx.scratchDir,
      loggedRows: () => ctx.metrics.count,
      resumed: (logged, step) => {
        ctx.metrics.resume(logged);
        bar.tick(step);
        ctx.log.info(`resumed the warm-up from its checkpoint at step ${step}`);
      },
    },
  );
  bar.done();

  // ── artifact ──────────────────────────────────────────────────────────────────────────────
  // A complete HF model folder (weights, tokenizer files, ONNX decoder): stages/_export.ts.
  const dir = `${ctx.outDir}/${POLICY_DIR}`;
  const policy = Policy.create(config, result.weights);
  const descriptor = charPolicyDescriptor(tokenizer);
  await writeHfModelFolder(dir, { policy, tokenizer, descriptor });
  await policy.release();
  await writeSummary(ctx, {
    kind: "sft",
    params,
    steps: warmup.steps,
    batchSize: warmup.batchSize,
    trainRows: rows.length,
    finalLoss: Number.isNaN(result.finalLoss) ? null : result.finalLoss,
    seconds: result.seconds,
    secondsPerStep: warmup.steps === 0 ? null : result.seconds / warmup.steps,
    tokens: result.tokens,
    resumedFrom: result.resumedFrom,
    model,
  });
  ctx.log.info(
    `warm-up done: final loss ${result.finalLoss.toFixed(4)}, ${result.seconds.toFixed(1)} s`,
  );
}

// ----- kind checkpoint ----------------------------------------------------------------------

async function importCheckpoint(ctx: StageContext<BaseConfig>): Promise<void> {
  const { CONFIG_FILE, INDEX_FILE, checkpointProblems, openCheckpoint, WEIGHTS_FILE } =
    await import("../kernels/checkpoint.ts");
  const { parameterCount, parameterShapes, qwen2ConfigFromHF } = await import(
    "../kernels/transformer.ts"
  );
  const { loadHfTokenizer } = await import("../data/tokenizer_hf.ts");
  const { HF_TOKENIZER_FILES } = await import("./_export.ts");
  const {
    hfPolicyDescriptor,
    POLICY_DESCRIPTOR,
    POLICY_DIR,
    readPolicyDescriptor,
    writePolicyDescriptor,
  } = await import("./_policy_io.ts");
  const source = ctx.config.base.checkpoint ?? "";
  const where = `base.checkpoint ${JSON.stringify(source)}`;
  if (source === "") {
    throw new Error(
      "base.checkpoint is empty; expected the path of a Hugging Face checkpoint folder when " +
        'base.kind is "checkpoint"',
    );
  }
  const info = await Deno.stat(source).catch(() => null);
  if (info === null) throw new Error(`${where} does not exist; expected a checkpoint folder`);
  if (!info.isDirectory) throw new Error(`${where} is a file; expected a checkpoint folder`);

  // ── validate: config, weights (pickle refused), tensor names and shapes ──────────────────
  let files: string[];
  let params: number;
  try {
    using reader = await openCheckpoint(source);
    const config = qwen2ConfigFromHF(reader.config);
    const problems = checkpointProblems(
      reader,
      parameterShapes(config),
      (name) =>
        name.endsWith("rotary_emb.inv_freq") ||
        (config.tieWordEmbeddings && name === "lm_head.weight"),
    );
    if (problems.length > 0) throw new Error(problems.join("; "));
    params = parameterCount(config);
    files = await weightFiles(source, WEIGHTS_FILE, INDEX_FILE);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message.replace(/^checkpoint [^:]*:\s*/, "")}`);
  }

  // ── copy weights and tokenizer files ──────────────────────────────────────────────────────
  const dir = `${ctx.outDir}/${POLICY_DIR}`;
  await Deno.mkdir(dir, { recursive: true });
  const present = [];
  for (const name of HF_TOKENIZER_FILES) {
    if (await Deno.stat(`${source}/${name}`).then((s) => s.isFile, () => false)) present.push(name);
  }
  const copied = [CONFIG_FILE, ...files, ...present];
  const bar = ctx.progress(copied.length, "files copied");
  for (const name of copied) {
    await Deno.copyFile(`${source}/${name}`, `${dir}/${name}`);
    bar.tick();
  }
  bar.done();

  // ── descriptor: our own (a folder exported by this pipeline), else the HF tokenizer's ────
  const ours = await Deno.stat(`${source}/${POLICY_DESCRIPTOR}`).then(() => true, () => false);
  let tokenizerKind: string;
  if (ours) {
    const descriptor = await readPolicyDescriptor(source);
    await writePolicyDescriptor(dir, descriptor);
    tokenizerKind = descriptor.tokenizer.kind;
  } else if (present.includes("tokenizer.json")) {
    await loadHfTokenizer(dir).catch((e) => {
      throw new Error(`${where}: ${(e as Error).message}`);
    });
    const config = present.includes("tokenizer_config.json")
      ? JSON.parse(await Deno.readTextFile(`${dir}/tokenizer_config.json`))
      : {};
    const chat = present.includes("chat_template.jinja") ||
      typeof config.chat_template === "string" ||
      Array.isArray(config.chat_template);
    await writePolicyDescriptor(dir, hfPolicyDescriptor(chat));
    tokenizerKind = "hf";
  } else {
    throw new Error(
      `${where} has no tokenizer.json (nor a ${POLICY_DESCRIPTOR} from this pipeline); expected ` +
        "the model's tokenizer files next to its weights",
    );
  }
  await writeSummary(ctx, {
    kind: "checkpoint",
    source,
    params,
    tokenizer: tokenizerKind,
    files: copied.length,
  });
  ctx.log.info(`imported ${source}: ${(params / 1e6).toFixed(1)}M parameters`);
}

/** The weight files of a checkpoint folder: the single file, or the index and its shards. */
async function weightFiles(dir: string, single: string, index: string): Promise<string[]> {
  if (await Deno.stat(`${dir}/${single}`).then(() => true, () => false)) return [single];
  const map = JSON.parse(await Deno.readTextFile(`${dir}/${index}`)).weight_map as Record<
    string,
    string
  >;
  return [index, ...new Set(Object.values(map))];
}
