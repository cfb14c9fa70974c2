/**
 * The GRPO loop of `train[method, seed]` as a resumable object: {@link GrpoRun.open} loads the
 * base policy (or the last checkpoint), {@link GrpoRun.step} runs one rollout step and returns
 * its metrics row, {@link GrpoRun.finish} saves the final policy. stages/train.ts describes the
 * algorithm step by step; this file keeps the bookkeeping out of it.
 *
 * Shapes: B = prompts × G responses of a step; T = the longest prompt + response of the step;
 * per-token arrays are [B, T−1] (column t is about token t + 1, see kernels/rollout.ts).
 *
 * @module
 */

import type { StageContext } from "../pipeline/stage.ts";
import type { ProblemRow } from "../data/rows.ts";
import { reward } from "../data/reward.ts";
import { streamKey } from "../kernels/counter_rng.ts";
import { klK3Reference } from "../kernels/fused.ts";
import {
  buildSelectionGraph,
  clipCovUniforms,
  type LossOptions,
  miniBatchSelections,
  type ResolvedLossOptions,
  resolveLossOptions,
} from "../kernels/losses.ts";
import { compile, type Program } from "../kernels/session.ts";
import { Policy } from "../kernels/policy.ts";
import {
  cutColumns,
  PolicyTrainer,
  type Rollout,
  rolloutBatch,
  rolloutFeeds,
  rowRanges,
  scoreResponses,
  takeRows,
  trimRows,
} from "../kernels/rollout.ts";
import { HostTensor } from "../kernels/session.ts";
import { readSafetensors, writeSafetensors } from "../kernels/safetensors.ts";
import { Trainer, type TrainStep } from "../kernels/train_step.ts";
import { TRAINER_STATE_FILE } from "../kernels/trainer_state.ts";
import { parameterShapes } from "../kernels/transformer.ts";
import { lossChunking } from "../kernels/_chunk_head.ts";
import { groupAdvantages, zeroVarianceGroups } from "./_rl/advantage.ts";
import type { TrainingPlan } from "./_rl/plan.ts";
import type { TrainingMethod } from "./_methods.ts";
import { loadStagePolicy, POLICY_DIR, type StagePolicy } from "./_policy_io.ts";
import { writeHfModelFolder } from "./_export.ts";
import { methodLossOptions, policyLossStep } from "./_loss_config.ts";
import type { TrainConfig } from "./train.ts";

/** What {@link GrpoRun.open} needs besides the stage context. */
export interface GrpoRunOptions {
  method: TrainingMethod;
  seed: number;
  plan: TrainingPlan;
  rows: readonly ProblemRow[];
}

/** Where a run stands: the next step to take. */
interface Position {
  format: "sent-train-position/1";
  /** Plan stage (curriculum bucket) of the next step. */
  stage: number;
  /** Step within that stage. */
  step: number;
  /** Metrics rows written so far. */
  metricsRows: number;
}

/** A metrics row. */
export type StepRow = Record<string, number | string | boolean | null>;

const LATEST = "latest.json";

/** One training run, step by step. */
export class GrpoRun {
  readonly #ctx: StageContext<TrainConfig>;
  readonly #o: GrpoRunOptions;
  readonly #bundle: StagePolicy;
  readonly #rows: ReadonlyMap<string, ProblemRow>;
  readonly #trainStep: TrainStep;
  /**
   * Shortest token length a micro-batch is cut to: a loss graph whose output head runs in n
   * chunks of positions needs at least n predicted positions (kernels/_chunk_head.ts).
   */
  readonly #minLength: number;
  #pt: PolicyTrainer;
  #reference: Policy;
  #position: Position;
  #seconds = 0;
  /** The method's options as given to the loss, and with every default filled in. */
  readonly #lossOptions: LossOptions;
  readonly #resolved: ResolvedLossOptions;
  #selection: Promise<Program> | undefined;

  private constructor(
    ctx: StageContext<TrainConfig>,
    o: GrpoRunOptions,
    bundle: StagePolicy,
    trainStep: TrainStep,
    pt: PolicyTrainer,
    reference: Policy,
    position: Position,
  ) {
    this.#ctx = ctx;
    this.#o = o;
    this.#bundle = bundle;
    this.#rows = new Map(o.rows.map((r) => [r.id, r]));
    this.#trainStep = trainStep;
    const config = bundle.policy.config;
    this.#minLength = (lossChunking(config.vocabSize, config.maxPositions)?.chunks ?? 1) + 1;
    this.#pt = pt;
    this.#reference = reference;
    this.#position = position;
    const t = ctx.config.train;
    this.#lossOptions = methodLossOptions(o.method.loss, ctx.config.loss, {
      temperature: t.temperature,
      clipLow: t.clipLow,
      clipHigh: t.clipHigh,
      refCoef: t.klCoef,
    });
    this.#resolved = resolveLossOptions(o.method.loss, this.#lossOptions);
  }

  /** Selections and token-means over the whole mini-batch (`loss.statScope: mini`). */
  get #miniScope(): boolean {
    return this.#resolved.statScope === "mini";
  }

  /**
   * Mini scope: score every micro-batch with the current weights (the values its train step will
   * recompute: weights do not change within a mini-batch), run the selection graph once over
   * the whole mini-batch, and add its `select.*` inputs to each micro-batch's feeds.
   */
  async #miniSelections(micros: { part: Rollout; feeds: Record<string, HostTensor> }[]) {
    this.#selection ??= compile(buildSelectionGraph(this.#o.method.loss, this.#lossOptions), {
      device: "cpu",
      threads: this.#ctx.threads,
    });
    const values = [];
    for (const { part, feeds } of micros) {
      const scores = await this.#pt.policy.score(part.batch, {
        temperature: this.#resolved.temperature,
      });
      const mask = part.responseMask;
      values.push({
        batch: part.batch.batch,
        width: part.batch.length - 1,
        logp: scores.logprobs.map((v, i) => v * mask[i]),
        entropy: scores.entropy.map((v, i) => v * mask[i]),
        oldLogp: feeds.old_logp.data as Float32Array,
        advantages: feeds.advantages.data as Float32Array,
        responseMask: mask,
        uniforms: feeds.clip_cov_uniforms.data as Float32Array,
      });
    }
    const selections = await miniBatchSelections(await this.#selection, values);
    selections.forEach((selection, i) => Object.assign(micros[i].feeds, selection));
  }

  /**
   * Start from the base policy, or resume from the last checkpoint in the scratch directory.
   *
   * @param ctx The train node's context.
   * @param o Method, seed, plan and problems.
   * @returns The run, positioned at its next step.
   */
  static async open(ctx: StageContext<TrainConfig>, o: GrpoRunOptions): Promise<GrpoRun> {
    const t = ctx.config.train;
    const device = { device: ctx.device, threads: ctx.threads };
    const bundle = await loadStagePolicy(ctx.input("base"), {
      ...device,
      use: "train",
      grader: ctx.config.grader.mode,
    });
    const config = bundle.policy.config;
    const trainStep = policyLossStep(config, o.method.loss, ctx.config.loss, {
      temperature: t.temperature,
      clipLow: t.clipLow,
      clipHigh: t.clipHigh,
      refCoef: t.klCoef,
      adamw: {
        beta1: t.adamBeta1,
        beta2: t.adamBeta2,
        weightDecay: t.weightDecay,
        maxGradNorm: t.gradClip,
      },
    });
    const trainerOptions = { ...device, compile: ["accumulate" as const, "apply" as const] };
    const latest = await readLatest(ctx.scratchDir);
    if (latest === null) {
      const pt = await PolicyTrainer.create(bundle.policy, trainStep, trainerOptions);
      const reference = Policy.create(config, cloneWeights(bundle.policy.weights), device);
      const position: Position = {
        format: "sent-train-position/1",
        stage: 0,
        step: 0,
        metricsRows: 0,
      };
      return new GrpoRun(ctx, o, bundle, trainStep, pt, reference, position);
    }
    const dir = `${ctx.scratchDir}/${latest.dir}`;
    const trainer = await Trainer.restore(
      trainStep,
      `${dir}/${TRAINER_STATE_FILE}`,
      trainerOptions,
    );
    const pt = await PolicyTrainer.bind(bundle.policy, trainer);
    const refTensors = await readSafetensors(`${dir}/reference.safetensors`);
    const refWeights = new Map(
      [...refTensors].map(([name, t]) => [name, t.data as Float32Array]),
    );
    const reference = Policy.create(config, refWeights, device);
    ctx.metrics.resume(latest.position.metricsRows);
    ctx.log.info(
      `resumed at stage ${latest.position.stage}, step ${latest.position.step} ` +
        `(${latest.position.metricsRows} metric rows kept)`,
    );
    return new GrpoRun(ctx, o, bundle, trainStep, pt, reference, latest.position);
  }

  /** Steps taken over all stages (the global index of the next step). */
  get globalStep(): number {
    const { stages } = this.#o.plan;
    let n = this.#position.step;
    for (let s = 0; s < this.#position.stage; s++) n += stages[s].steps.length;
    return n;
  }

  /** True when every step of the plan is done. */
  get finished(): boolean {
    return this.#position.stage >= this.#o.plan.stages.length;
  }

  /**
   * Run the next rollout step: sample, reward, score, update; log its metrics row; checkpoint
   * when due.
   *
   * @returns The step's metrics row (already logged).
   */
  async step(): Promise<StepRow> {
    const t = this.#ctx.config.train;
    const { stage, step } = this.#position;
    const planStage = this.#o.plan.stages[stage];
    const global = this.globalStep;
    const tokenizer = this.#bundle.tokenizer;
    const t0 = performance.now();

    // 1–2. sample G responses per prompt from the current policy
    const problems = planStage.steps[step].map((id) => this.#rows.get(id)!);
    const prompts = problems.map((p) => this.#bundle.promptIds(p.problem));
    const requests = problems.flatMap((p, i) =>
      Array.from({ length: t.groupSize }, (_, j) => ({
        prompt: prompts[i],
        problem: `${global}/${p.id}`,
        sample: j,
      }))
    );
    const completions = await this.#pt.generate(requests, {
      seed: `train/${this.#o.seed}`,
      maxNewTokens: t.maxResponseTokens,
      padId: tokenizer.padId,
      eosId: tokenizer.eosId,
      eosIds: this.#bundle.stopIds,
      temperature: t.temperature,
      topP: t.topP,
      batchSize: t.batchSize,
    });
    const t1 = performance.now();

    // 3. ±1 rewards, group-normalised advantages
    const rewards = completions.map((c, r) =>
      reward(
        this.#bundle.responseText(c.tokens),
        problems[Math.floor(r / t.groupSize)].answer,
        this.#bundle.reward,
      ).reward
    );
    const advantages = Float32Array.from(groupAdvantages(rewards, t.groupSize));

    // 4. π_old and reference scores, recomputed by the trainer's engine
    const rollout = rolloutBatch(requests.map((r) => r.prompt), completions.map((c) => c.tokens), {
      padId: tokenizer.padId,
      length: this.#minLength,
    });
    const scoring = { temperature: t.temperature, microBatchSize: t.microBatchSize };
    const old = await this.#pt.scoreResponses(rollout, scoring);
    const ref = await scoreResponses(this.#reference, rollout, scoring);
    const t2 = performance.now();

    // 5. mini-batches of micro-batches, one AdamW step per mini-batch
    const B = rollout.batch.batch;
    const W = rollout.batch.length - 1;
    const perMini = Math.ceil(B / t.miniBatches);
    let gradNorm = 0, skipped = 0, updateTokens = 0, microCount = 0;
    const lossSums: Record<string, number> = {};
    for (const [m0, m1] of rowRanges(B, perMini)) {
      const ranges = rowRanges(m1 - m0, t.microBatchSize);
      const scale = this.#miniScope ? 1 : 1 / ranges.length;
      const micros = ranges.map(([u0, u1]) => {
        const [a, b] = [m0 + u0, m0 + u1];
        const part = trimRows(rollout, a, b, this.#minLength);
        const w = part.batch.length - 1;
        const rowsOf = (values: Float32Array) => cutColumns(takeRows(values, B, a, b), W, w);
        const feeds: Record<string, HostTensor> = {
          ...rolloutFeeds(part),
          old_logp: new HostTensor("float32", [b - a, w], rowsOf(old.logp)),
          ref_logp: new HostTensor("float32", [b - a, w], rowsOf(ref.logp)),
          old_entropy: new HostTensor("float32", [b - a, w], rowsOf(old.entropy)),
          advantages: new HostTensor("float32", [b - a], advantages.slice(a, b)),
          loss_scale: new HostTensor(
            "float32",
            [],
            new Float32Array([scale]),
          ),
          clip_cov_uniforms: new HostTensor(
            "float32",
            [b - a, w],
            clipCovUniforms(streamKey("train", this.#o.seed, global, a), (b - a) * w),
          ),
        };
        return { part, feeds };
      });
      if (this.#miniScope) await this.#miniSelections(micros);
      for (const { part, feeds } of micros) {
        const out = await this.#pt.accumulate(pick(feeds, this.#trainStep.data));
        for (const [name, value] of Object.entries(out.values)) {
          lossSums[name] = (lossSums[name] ?? 0) + value;
        }
        microCount++;
        updateTokens += count(part.batch.mask);
      }
      const applied = await this.#pt.apply({ lr: t.lr });
      gradNorm += applied.gradNorm;
      if (!applied.applied) skipped++;
    }
    const t3 = performance.now();

    // bookkeeping: metrics row, position, checkpoint
    const valid = count(rollout.responseMask);
    const mean = (xs: ArrayLike<number>) => sumOf(xs) / Math.max(xs.length, 1);
    const rewardMean = mean(rewards);
    const row: StepRow = {
      step: global,
      bucket: planStage.index,
      epoch: planStage.epochOf[step],
      "reward/mean": rewardMean,
      "reward/std": Math.sqrt(mean(rewards.map((r) => (r - rewardMean) ** 2))),
      accuracy: rewards.filter((r) => r > 0).length / rewards.length,
      zero_variance_groups: zeroVarianceGroups(rewards, t.groupSize),
      entropy: sumOf(old.entropy) / Math.max(valid, 1),
      ref_kl: refKl(old.logp, ref.logp, rollout.responseMask) / Math.max(valid, 1),
      response_length: mean(rollout.responseLengths),
      grad_norm: gradNorm / t.miniBatches,
      updates_skipped: skipped,
      lr: t.lr,
      "seconds/generate": (t1 - t0) / 1000,
      "seconds/score": (t2 - t1) / 1000,
      "seconds/update": (t3 - t2) / 1000,
      tokens_per_s: updateTokens / Math.max((t3 - t2) / 1000, 1e-9),
      rollout_tokens_per_s: sumOf(rollout.responseLengths) / Math.max((t1 - t0) / 1000, 1e-9),
    };
    for (const [name, value] of Object.entries(lossSums)) {
      row[`loss/${name === "loss" ? "total" : name}`] = value / microCount;
    }
    row.step_seconds = (performance.now() - t0) / 1000;
    this.#seconds += row.step_seconds;
    // Log before the checkpoint, so a checkpoint's row count never runs ahead of the file.
    this.#ctx.metrics.log(row);
    await this.#advance();
    return row;
  }

  /** Move to the next step; at a stage boundary start the next stage; checkpoint when due. */
  async #advance(): Promise<void> {
    const t = this.#ctx.config.train;
    const p = this.#position;
    p.step++;
    p.metricsRows++;
    const stageDone = p.step >= this.#o.plan.stages[p.stage].steps.length;
    if (stageDone) {
      p.stage++;
      p.step = 0;
      if (!this.finished) await this.#startStage();
    }
    if (stageDone || this.globalStep % t.checkpointEvery === 0) await this.#checkpoint();
  }

  /**
   * A new curriculum stage starts from the current weights with a fresh optimizer; with
   * `curriculum.resetReference` its reference is those weights too.
   */
  async #startStage(): Promise<void> {
    const device = { device: this.#ctx.device, threads: this.#ctx.threads };
    const weights = cloneWeights(this.#pt.policy.weights);
    await this.#pt.trainer.release();
    const policy = Policy.create(this.#pt.policy.config, weights, device);
    await this.#pt.policy.release();
    this.#pt = await PolicyTrainer.create(policy, this.#trainStep, {
      ...device,
      compile: ["accumulate", "apply"],
    });
    if (this.#ctx.config.curriculum.resetReference) {
      await this.#reference.release();
      this.#reference = Policy.create(policy.config, cloneWeights(weights), device);
    }
  }

  /** Write trainer state, reference weights and position; then point `latest.json` at them. */
  async #checkpoint(): Promise<void> {
    const scratch = this.#ctx.scratchDir;
    const name = `step-${String(this.globalStep).padStart(6, "0")}`;
    const dir = `${scratch}/${name}`;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    await this.#pt.trainer.saveState(`${dir}/${TRAINER_STATE_FILE}`);
    const ref = new Map(
      [...this.#reference.weights].map(([n, w]) => [n, {
        dtype: "float32" as const,
        dims: parameterShapes(this.#reference.config).get(n)!,
        data: w,
      }]),
    );
    await writeSafetensors(`${dir}/reference.safetensors`, ref);
    await Deno.writeTextFile(`${dir}/position.json`, JSON.stringify(this.#position));
    // The pointer is replaced atomically, so a kill leaves the previous checkpoint in force.
    const tmp = `${scratch}/${LATEST}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ dir: name, position: this.#position }));
    await Deno.rename(tmp, `${scratch}/${LATEST}`);
    for await (const entry of Deno.readDir(scratch)) {
      if (entry.isDirectory && entry.name.startsWith("step-") && entry.name !== name) {
        await Deno.remove(`${scratch}/${entry.name}`, { recursive: true });
      }
    }
  }

  /**
   * Save the final policy as a complete HF model folder (stages/_export.ts) with the base's
   * descriptor and tokenizer, and free every session.
   *
   * @param dir Destination folder.
   * @returns Summary values for the manifest.
   */
  async finish(dir: string): Promise<Record<string, unknown>> {
    await writeHfModelFolder(dir, {
      policy: this.#pt.policy,
      tokenizer: this.#bundle.tokenizer,
      descriptor: this.#bundle.descriptor,
      tokenizerDir: this.#ctx.input("base").path(POLICY_DIR),
    });
    const summary = {
      method: String(this.#ctx.params.method),
      seed: this.#o.seed,
      steps: this.#o.plan.totalSteps,
      stages: this.#o.plan.stages.length,
      updates: this.#pt.trainer.updates,
      // Whether the trainer's parameters and moments lived on the device (webgpu) between runs.
      resident: this.#pt.trainer.resident,
      secondsThisAttempt: Math.round(this.#seconds * 10) / 10,
    };
    await this.#pt.release();
    await this.#reference.release();
    if (this.#selection) await (await this.#selection).release();
    return summary;
  }
}

/** The latest checkpoint pointer, or null when none was written (or it is unreadable). */
async function readLatest(scratch: string): Promise<{ dir: string; position: Position } | null> {
  try {
    const json = JSON.parse(await Deno.readTextFile(`${scratch}/${LATEST}`));
    if (json?.position?.format !== "sent-train-position/1" || typeof json.dir !== "string") {
      return null;
    }
    return json;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new Error(
      `${scratch}/${LATEST}: cannot read the train checkpoint pointer (${
        (error as Error).message
      }); ` +
        "delete the scratch folder to start the node over",
    );
  }
}

function cloneWeights(weights: ReadonlyMap<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...weights].map(([n, w]) => [n, w.slice()]));
}

/** The feeds a graph declares, failing on any it needs that is not provided. */
function pick(
  feeds: Record<string, HostTensor>,
  names: readonly string[],
): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of names) {
    if (!feeds[name]) {
      throw new Error(
        `train: the loss graph needs input ${name}, which the GRPO loop does not provide ` +
          `(it provides ${Object.keys(feeds).join(", ")})`,
      );
    }
    out[name] = feeds[name];
  }
  return out;
}

function count(a: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) n++;
  return n;
}

function sumOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

/** Σ over response tokens of the k3 estimate of KL(π_old ‖ π_ref), with the loss's clamps. */
function refKl(logp: Float32Array, refLogp: Float32Array, mask: Float32Array): number {
  const k3 = klK3Reference(logp, refLogp);
  let s = 0;
  for (let i = 0; i < mask.length; i++) s += mask[i] * k3[i];
  return s;
}
