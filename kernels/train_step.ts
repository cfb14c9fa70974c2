/**
 * Training steps as graphs, and `Trainer`, which runs them and owns the state between steps.
 *
 * Two ways to take one optimizer step:
 * - fused (`Trainer.step`): forward (the loss graph), backward (`gradInto`) and the AdamW update
 *   (`adamwInto`) in one graph, so parameters cross the host–device boundary at most once each
 *   way per step (kernels/README.md §1);
 * - accumulated (`Trainer.accumulate` per micro-batch, then `Trainer.apply`): the accumulate graph
 *   runs forward and backward of one micro-batch and adds the gradient into one accumulator per
 *   parameter; the apply graph clips the accumulated gradients by their global norm and takes one
 *   AdamW step. Only one micro-batch's activations exist at a time, so a mini-batch larger than
 *   memory allows is trained as K micro-batches.
 *
 * The Trainer only sums gradients. Scaling is the loss graph's business: to train on the mean of
 * the micro-batch losses, each micro-batch loss is multiplied by 1/K (`withMicroWeight` adds a
 * `micro_weight` input for that). With a token-mean loss and equal token counts per micro-batch
 * the accumulated gradient then equals the full mini-batch's gradient. A fused step and a single
 * accumulated micro-batch with weight 1 take the same update.
 *
 * Accumulator arithmetic: `acc.<p>.next = acc.<p> + ∂loss/∂p`, one Add per parameter and
 * micro-batch. The first micro-batch after an update adds to fresh zeros made on the device by a
 * small zeros program (one Expand per parameter), so no accumulator exists between updates and a
 * skipped update (non-finite norm) leaves nothing behind for the next mini-batch.
 *
 * State handling per device:
 * - `webgpu`: parameters, moments and accumulators are resident outputs (`gpu-buffer`); each run
 *   feeds the previous run's device tensors back in and disposes them once replaced, and the
 *   accumulators are disposed by `apply`, so they take no memory between updates. Metrics come
 *   back to the host. `state()` downloads for checkpoints.
 * - `cpu`, `cuda`: the state comes back as host tensors each run and is fed back zero-copy.
 *
 * `saveState`/`Trainer.restore` write and read the parameters, moments and update count
 * exactly (trainer_state.ts), so a restored trainer continues bit for bit like one that never
 * stopped (same device and thread count).
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { buildTrainStep, Trainer } from "./train_step.ts";
 * import { hostTensor } from "./session.ts";
 * const b = new GraphBuilder("fit");
 * const w = b.input("w", "float32", [2]);
 * const target = b.input("target", "float32", [2]);
 * const err = b.sub(w, target);
 * b.output(b.reduceSum(b.mul(err, err), [0], false), "loss");
 * const step = buildTrainStep(b.build(), { params: ["w"], weightDecay: 0 });
 * const trainer = await Trainer.create(step, { w: hostTensor("float32", [2], [0, 0]) });
 * const metrics = await trainer.step({ target: hostTensor("float32", [2], [1, -1]) }, { lr: 0.1 });
 * metrics.loss; // 2
 * // The same kind of update from two micro-batches whose gradients are summed:
 * await trainer.accumulate({ target: hostTensor("float32", [2], [1, 0]) });
 * await trainer.accumulate({ target: hostTensor("float32", [2], [0, -1]) });
 * (await trainer.apply({ lr: 0.1 })).applied; // true
 * await trainer.release();
 * ```
 *
 * @module
 */

import { gradInto } from "./autodiff.ts";
import {
  adamwInto,
  type AdamWOptions,
  type AdamWParam,
  nextName,
  type StatePair,
} from "./adamw.ts";
import { GraphBuilder } from "./builder.ts";
import type { DType, Graph, Value } from "./ir.ts";
import {
  compile,
  type Device,
  DeviceTensor,
  download,
  HostTensor,
  hostTensor,
  type Program,
  type RunOutputs,
  type Tensor,
  zerosTensor,
} from "./session.ts";
import type { WebGpuDriver } from "./swiftshader.ts";
import {
  type ExpectedTensor,
  loadTrainerState,
  saveTrainerState,
  TrainerStateError,
} from "./trainer_state.ts";

/** A parameter to train: its input name, and whether weight decay applies (default true). */
export type TrainParam = string | { readonly name: string; readonly decay?: boolean };

/** Options of `buildTrainStep`: what to train, and AdamW's hyperparameters. */
export interface TrainStepOptions extends AdamWOptions {
  /** Parameters: graph inputs of a float dtype. */
  params: readonly TrainParam[];
  /** The scalar loss output; default `"loss"`. */
  loss?: string;
  /** Other forward outputs to keep as host metrics (default none: they would be copied out). */
  metrics?: readonly string[];
}

/**
 * Scalar input of the zeros graph, fed 0: the accumulators are Expands of it (an input, so ORT
 * cannot fold the graph into constants).
 */
export const ACC_FILL = "acc_fill";

/** Scalar input that `withMicroWeight` multiplies the loss by (1/K for K micro-batches). */
export const MICRO_WEIGHT = "micro_weight";

/** Input name of a parameter's gradient accumulator (its output is `nextName` of it). */
export function accumulatorName(param: string): string {
  return `acc.${param}`;
}

/** The gradient-accumulation split of a train step: two graphs sharing the fused step's names. */
export interface Accumulation {
  /**
   * Forward and backward of one micro-batch. Inputs: the data, the parameters and one
   * accumulator `acc.<p>` per parameter. Outputs: the loss and the extra metrics (on the host),
   * then `acc.<p>.next = acc.<p> + grad` per parameter.
   */
  readonly accumulate: Graph;
  /** Fresh accumulators: input `acc_fill` (scalar, fed 0), outputs `acc.<p>` of zeros. */
  readonly zeros: Graph;
  /**
   * Global-norm clipping and AdamW over the accumulated gradients. Inputs: the parameters, their
   * accumulators, moments, `lr` and `step`. Outputs: the state pairs of the fused step,
   * `grad_norm`, `update_applied`.
   */
  readonly apply: Graph;
  /** `acc.<p>` → `acc.<p>.next`, one per parameter, in parameter order. */
  readonly accumulators: readonly StatePair[];
  /** Host outputs of the accumulate graph: the loss, then the extra metrics. */
  readonly metrics: readonly string[];
}

/** A built train step. */
export interface TrainStep {
  /** The fused step: forward, backward, clipping and AdamW in one graph. */
  readonly graph: Graph;
  /** Parameters and moments: the input each step reads and the output that replaces it. */
  readonly state: readonly StatePair[];
  /** Parameter names, in the order given. */
  readonly params: readonly string[];
  /** Host outputs of the fused step: the loss, `grad_norm`, `update_applied`, the extras. */
  readonly metrics: readonly string[];
  /** Inputs the caller feeds each step or micro-batch (everything but state, `lr`, `step`). */
  readonly data: readonly string[];
  /** The same update as separate accumulate and apply graphs. */
  readonly accumulation: Accumulation;
}

/**
 * Compose forward, backward and the AdamW update into a fused step graph, and the same update
 * split into accumulate and apply graphs (see the module doc).
 *
 * @param lossGraph Forward graph with the parameters as inputs and a scalar loss output.
 * @param options Parameters, loss name, kept metrics, AdamW hyperparameters.
 * @returns The graphs and their naming.
 */
export function buildTrainStep(lossGraph: Graph, options: TrainStepOptions): TrainStep {
  const lossName = options.loss ?? "loss";
  const where = `buildTrainStep(${lossGraph.name})`;
  const byName = new Map(lossGraph.inputs.map((v) => [v.name, v]));
  const loss = lossGraph.outputs.find((v) => v.name === lossName);
  if (!loss) {
    throw new Error(
      `${where}: no output ${lossName}; outputs are ${
        lossGraph.outputs.map((v) => v.name).join(", ")
      }`,
    );
  }
  const params = options.params.map((p) => (typeof p === "string" ? { name: p } : p));
  const values: Value[] = params.map((p) => {
    const v = byName.get(p.name);
    if (!v) {
      throw new Error(
        `${where}: parameter ${p.name} is not a graph input; inputs are ${
          [...byName.keys()].join(", ")
        }`,
      );
    }
    return v;
  });
  const keep = new Set([lossName, ...(options.metrics ?? [])]);
  for (const name of keep) {
    if (!lossGraph.outputs.some((v) => v.name === name)) {
      throw new Error(`${where}: metric ${name} is not an output of the loss graph`);
    }
  }
  // Forward + backward once; the fused and the accumulate graphs both extend it. The gradient
  // values are not outputs yet: each extension consumes them.
  const fb = GraphBuilder.from(lossGraph);
  const kept = fb.outputs.filter((v) => keep.has(v.name));
  fb.outputs.splice(0, fb.outputs.length, ...kept);
  const grads = gradInto(fb, loss, values);
  const backward = fb.build();
  const entries: AdamWParam[] = params.map((p, i) => ({
    name: p.name,
    param: values[i],
    grad: grads[i],
    decay: p.decay,
  }));

  const fused = GraphBuilder.from(backward);
  const parts = adamwInto(fused, entries, options);
  const graph = fused.build();
  const stateInputs = new Set(parts.state.map((s) => s.input));
  const hostMetrics = [lossName, ...(options.metrics ?? [])];
  return {
    graph: { ...graph, name: `${lossGraph.name}_train_step` },
    state: parts.state,
    params: params.map((p) => p.name),
    metrics: [lossName, parts.gradNorm.name, parts.applied.name, ...(options.metrics ?? [])],
    data: graph.inputs
      .map((v) => v.name)
      .filter((n) => !stateInputs.has(n) && n !== parts.lr.name && n !== parts.step.name),
    accumulation: {
      accumulate: accumulateGraph(`${lossGraph.name}_accumulate`, backward, entries),
      apply: applyGraph(`${lossGraph.name}_apply`, entries, options),
      zeros: zerosGraph(`${lossGraph.name}_zeros`, entries),
      accumulators: params.map((p) => ({
        input: accumulatorName(p.name),
        output: nextName(accumulatorName(p.name)),
      })),
      metrics: hostMetrics,
    },
  };
}

/** The accumulate graph: the forward and backward graph plus `acc.<p>.next = acc.<p> + grad`. */
function accumulateGraph(name: string, backward: Graph, entries: readonly AdamWParam[]): Graph {
  const b = GraphBuilder.from(backward);
  for (const e of entries) {
    const acc = b.input(accumulatorName(e.name), e.param.dtype, e.param.shape);
    b.output(b.add(acc, e.grad), nextName(acc.name)); //                         [shape of p]
  }
  return { ...b.build(), name };
}

/** The zeros graph: `acc.<p>` = `acc_fill` expanded to the parameter's shape. */
function zerosGraph(name: string, entries: readonly AdamWParam[]): Graph {
  const b = new GraphBuilder(name);
  const fill = b.input(ACC_FILL, entries[0].param.dtype, []);
  for (const e of entries) {
    b.output(b.expand(fill, staticShape(name, e.param)), accumulatorName(e.name));
  }
  return b.build();
}

function staticShape(where: string, v: Value): number[] {
  if (!v.shape.every((d) => typeof d === "number")) {
    throw new Error(
      `${where}: parameter ${v.name} has shape [${
        v.shape.join(",")
      }]; parameters need static shapes`,
    );
  }
  return v.shape as number[];
}

/** The apply graph: AdamW whose gradients are the accumulators `acc.<p>`. */
function applyGraph(name: string, entries: readonly AdamWParam[], options: AdamWOptions): Graph {
  const b = new GraphBuilder(name);
  const inputs = entries.map((e) => ({
    name: e.name,
    param: b.input(e.name, e.param.dtype, e.param.shape),
    grad: b.input(accumulatorName(e.name), e.param.dtype, e.param.shape),
    decay: e.decay,
  }));
  adamwInto(b, inputs, options);
  return b.build();
}

/**
 * A loss graph whose loss is multiplied by a new float32 scalar input `micro_weight`: feed 1/K
 * to each of K accumulated micro-batches to train on the mean of their losses. The reported loss
 * is the weighted one (the K of them sum to the mean).
 *
 * @param lossGraph Forward graph with a scalar loss output.
 * @param options The loss output's name (default `"loss"`).
 * @returns A new graph; the loss output keeps its name.
 */
export function withMicroWeight(lossGraph: Graph, options: { loss?: string } = {}): Graph {
  const lossName = options.loss ?? "loss";
  const at = lossGraph.outputs.findIndex((v) => v.name === lossName);
  if (at < 0) {
    throw new Error(
      `withMicroWeight(${lossGraph.name}): no output ${lossName}; outputs are ${
        lossGraph.outputs.map((v) => v.name).join(", ")
      }`,
    );
  }
  // Rename the unweighted loss value everywhere, so the weighted one can take its name.
  const raw = `${lossName}_unweighted`;
  const rename = (v: Value | null) => (v && v.name === lossName ? { ...v, name: raw } : v);
  const graph: Graph = {
    ...lossGraph,
    nodes: lossGraph.nodes.map((n) => ({
      ...n,
      inputs: n.inputs.map(rename),
      outputs: n.outputs.map((o) => rename(o)!),
    })),
    outputs: lossGraph.outputs.filter((v) => v.name !== lossName),
  };
  const loss = rename(lossGraph.outputs[at])!;
  const b = GraphBuilder.from(graph);
  const weight = b.input(MICRO_WEIGHT, loss.dtype, []);
  b.output(b.mul(loss, weight), lossName);
  // Keep the loss first among the outputs, where it was.
  const outputs = b.outputs.splice(0);
  b.outputs.push(...outputs.slice(0, at), outputs.at(-1)!, ...outputs.slice(at, -1));
  return b.build();
}

/**
 * Split a batch into `count` micro-batches along axis 0 (rows), as zero-copy views: every tensor
 * of rank ≥ 1 must have the same number of rows, divisible by `count`; scalars go to every part.
 *
 * @param data Host tensors by input name, each [rows, …] or a scalar.
 * @param count Number of micro-batches K.
 * @returns K records with the same names, each tensor [rows / K, …].
 */
export function splitRows(
  data: Readonly<Record<string, HostTensor>>,
  count: number,
): Record<string, HostTensor>[] {
  const batched = Object.entries(data).filter(([, t]) => t.dims.length > 0);
  const rows = batched.length > 0 ? batched[0][1].dims[0] : 0;
  for (const [name, t] of batched) {
    if (t.dims[0] !== rows) {
      throw new Error(
        `splitRows(): ${name} has ${t.dims[0]} rows but ${batched[0][0]} has ${rows}; every ` +
          `batched input must have the same number of rows`,
      );
    }
  }
  if (!Number.isInteger(count) || count < 1 || rows % count !== 0) {
    throw new Error(
      `splitRows(): cannot split ${rows} rows into ${count} equal micro-batches; expected a ` +
        `positive divisor of ${rows}`,
    );
  }
  const part = rows / count;
  return Array.from({ length: count }, (_, k) => {
    const out: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(data)) {
      if (t.dims.length === 0) {
        out[name] = t;
        continue;
      }
      const width = t.size / rows; //                                        elements per row
      const view = t.data.subarray(k * part * width, (k + 1) * part * width);
      out[name] = new HostTensor(t.dtype, [part, ...t.dims.slice(1)], view);
    }
    return out;
  });
}

// ----- the trainer ------------------------------------------------------------------------------

/** The programs a trainer runs: the fused step, and the two halves of an accumulated step. */
export type TrainProgram = "step" | "accumulate" | "apply" | "zeros";

/** Options of `Trainer.create` and `Trainer.restore`. */
export interface TrainerOptions {
  /** Device; default `"cpu"`. */
  device?: Device;
  /** ORT intra-op threads; default the machine's core count. */
  threads?: number;
  /** Vulkan driver for WebGPU. */
  webgpuDriver?: WebGpuDriver;
  /**
   * Programs to compile before `create`/`restore` return (default `["step"]`); the others are
   * compiled on first use. A trainer that only accumulates passes
   * `["accumulate", "apply", "zeros"]`.
   */
  compile?: readonly TrainProgram[];
}

/** Metrics of one fused step: the loss, the gradient norm, whether it was applied, extras. */
export interface StepMetrics {
  readonly loss: number;
  readonly gradNorm: number;
  readonly applied: boolean;
  /** Every host metric by output name. */
  readonly values: Readonly<Record<string, number>>;
}

/** Metrics of one accumulated micro-batch: its (weighted) loss and the extra metrics. */
export interface MicroBatchMetrics {
  readonly loss: number;
  /** The loss and every extra metric by output name. */
  readonly values: Readonly<Record<string, number>>;
}

/** What `Trainer.apply` reports. */
export interface ApplyMetrics {
  /** Global norm of the accumulated gradient, before clipping. */
  readonly gradNorm: number;
  /** False when the norm was not finite: parameters and moments are unchanged. */
  readonly applied: boolean;
  /** Micro-batches whose gradients were summed. */
  readonly microBatches: number;
}

/** Runs a `TrainStep` repeatedly, keeping parameters, moments and accumulators between runs. */
export class Trainer {
  /** The step this trainer runs. */
  readonly spec: TrainStep;
  readonly device: Device;
  readonly #options: TrainerOptions;
  readonly #programs = new Map<TrainProgram, Promise<Program>>();
  /** Scalar dtype of `lr`, `step` and `acc_fill` (the parameters' dtype). */
  readonly #dtype: DType;
  #state: Map<string, Tensor>;
  /** Accumulators of the micro-batches since the last update; empty when there are none. */
  #acc = new Map<string, Tensor>();
  #micro = 0;
  #applied: number;

  private constructor(
    step: TrainStep,
    state: Map<string, Tensor>,
    updates: number,
    options: TrainerOptions,
  ) {
    this.spec = step;
    this.device = options.device ?? "cpu";
    this.#options = options;
    this.#state = state;
    this.#applied = updates;
    this.#dtype = step.graph.inputs.find((v) => v.name === step.params[0])!.dtype;
  }

  /**
   * Set a step's initial state (moments start at zero) and compile its programs.
   *
   * @param step From `buildTrainStep`.
   * @param params Initial value of every parameter.
   * @param options Device, threads and the programs to compile now.
   * @returns The trainer.
   */
  static async create(
    step: TrainStep,
    params: Readonly<Record<string, HostTensor>>,
    options: TrainerOptions = {},
  ): Promise<Trainer> {
    const inputs = new Map(step.graph.inputs.map((v) => [v.name, v]));
    const state = new Map<string, Tensor>();
    for (const { input } of step.state) {
      const v = inputs.get(input)!;
      if (step.params.includes(input)) {
        const t = params[input];
        if (!t) {
          throw new Error(`Trainer.create(${step.graph.name}): no initial value for ${input}`);
        }
        state.set(input, t);
      } else {
        state.set(input, zerosTensor(v.dtype, v.shape as number[]));
      }
    }
    return await new Trainer(step, state, 0, options).#compileNow();
  }

  /**
   * A trainer that continues from a state saved by `saveState`: the same parameters, moments
   * and update count, so it takes exactly the updates the saved trainer would have taken.
   *
   * @param step From `buildTrainStep`, built as for the saved trainer.
   * @param path The state file (e.g. `<checkpoint>/trainer_state.safetensors`).
   * @param options Device, threads and the programs to compile now.
   * @returns The trainer.
   * @throws TrainerStateError naming the file and every mismatch with the step's state.
   */
  static async restore(
    step: TrainStep,
    path: string,
    options: TrainerOptions = {},
  ): Promise<Trainer> {
    const loaded = await loadTrainerState(path, stateShapes(step));
    const state = new Map<string, Tensor>(loaded.tensors);
    return await new Trainer(step, state, loaded.updates, options).#compileNow();
  }

  async #compileNow(): Promise<this> {
    await Promise.all((this.#options.compile ?? ["step"]).map((k) => this.program(k)));
    return this;
  }

  /**
   * One of the trainer's compiled programs (compiled on first use, then cached).
   *
   * @param kind Which program.
   * @returns The program.
   */
  program(kind: TrainProgram): Promise<Program> {
    let p = this.#programs.get(kind);
    if (!p) {
      const { graph, resident } = PROGRAMS[kind](this.spec);
      p = compile(graph, {
        device: this.#options.device,
        threads: this.#options.threads,
        webgpuDriver: this.#options.webgpuDriver,
        residentOutputs: resident,
      });
      this.#programs.set(kind, p);
    }
    return p;
  }

  /** Number of updates applied so far (skipped steps do not count, as in the bias correction). */
  get updates(): number {
    return this.#applied;
  }

  /** Micro-batches accumulated since the last update. */
  get pendingMicroBatches(): number {
    return this.#micro;
  }

  /** The current parameter and moment handles (device tensors on webgpu: no data accessor). */
  get stateTensors(): ReadonlyMap<string, Tensor> {
    return this.#state;
  }

  /** The current accumulators by parameter name (empty between updates). */
  get accumulatorTensors(): ReadonlyMap<string, Tensor> {
    return this.#acc;
  }

  /** True when the state lives on the device between steps. */
  get resident(): boolean {
    return [...this.#state.values()].some((t) => t instanceof DeviceTensor);
  }

  /**
   * Run one fused step: forward, backward, clip, AdamW update.
   *
   * @param data One tensor per data input (`spec.data`).
   * @param options Learning rate of this step.
   * @returns The step's metrics.
   * @throws Error while micro-batches are accumulated and not yet applied.
   */
  async step(
    data: Readonly<Record<string, Tensor>>,
    options: { lr: number },
  ): Promise<StepMetrics> {
    this.#assertNoPending("step");
    const program = await this.program("step");
    const out = await program.run({
      ...data,
      ...this.#updateScalars(options.lr),
      ...this.#feeds(),
    });
    this.#replaceState(out);
    const values = hostValues(out, this.spec.metrics);
    const applied = this.#count(values);
    return { loss: values[this.spec.metrics[0]], gradNorm: values.grad_norm, applied, values };
  }

  /**
   * Run forward and backward on one micro-batch and add its gradients to the accumulators.
   *
   * @param data One tensor per data input (`spec.data`), e.g. with `micro_weight` = 1/K.
   * @returns The micro-batch's loss and extra metrics.
   */
  async accumulate(data: Readonly<Record<string, Tensor>>): Promise<MicroBatchMetrics> {
    const program = await this.program("accumulate");
    if (this.#micro === 0) this.#acc = await this.#zeros();
    const feeds: Record<string, Tensor> = { ...data };
    for (const name of this.spec.params) {
      feeds[name] = this.#state.get(name)!;
      feeds[accumulatorName(name)] = this.#acc.get(name)!;
    }
    const out = await program.run(feeds);
    const next = new Map<string, Tensor>();
    for (const name of this.spec.params) next.set(name, out.get(nextName(accumulatorName(name))));
    disposeAll(this.#acc.values());
    this.#acc = next;
    this.#micro++;
    const values = hostValues(out, this.spec.accumulation.metrics);
    return { loss: values[this.spec.accumulation.metrics[0]], values };
  }

  /**
   * Clip the accumulated gradients by their global norm and take one AdamW step; the
   * accumulators are cleared either way (a non-finite norm skips the update).
   *
   * @param options Learning rate of this update.
   * @returns The norm, whether the update was applied, and how many micro-batches it summed.
   * @throws Error when nothing was accumulated since the last update.
   */
  async apply(options: { lr: number }): Promise<ApplyMetrics> {
    if (this.#micro === 0) {
      throw new Error(
        `Trainer.apply(${this.spec.graph.name}): no micro-batch accumulated since the last ` +
          `update; call accumulate(data) first`,
      );
    }
    const program = await this.program("apply");
    const feeds: Record<string, Tensor> = { ...this.#updateScalars(options.lr), ...this.#feeds() };
    for (const [name, t] of this.#acc) feeds[accumulatorName(name)] = t;
    const out = await program.run(feeds);
    this.#replaceState(out);
    disposeAll(this.#acc.values());
    this.#acc = new Map();
    const microBatches = this.#micro;
    this.#micro = 0;
    const values = hostValues(out, ["grad_norm", "update_applied"]);
    return { gradNorm: values.grad_norm, applied: this.#count(values), microBatches };
  }

  /** The current parameters and moments, on the host (downloads resident state). */
  async state(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.#state) out.set(name, await download(t));
    return out;
  }

  /**
   * Save parameters, moments and the update count (atomically) for `Trainer.restore`.
   *
   * @param path The file, conventionally `TRAINER_STATE_FILE` inside the checkpoint directory.
   * @throws TrainerStateError while micro-batches are accumulated (save between updates).
   */
  async saveState(path: string): Promise<void> {
    if (this.#micro > 0) {
      throw new TrainerStateError(path, [
        `${this.#micro} micro-batches are accumulated but not applied; save after apply()`,
      ]);
    }
    await saveTrainerState(path, {
      tensors: await this.state(),
      updates: this.#applied,
      graph: this.spec.graph.name,
    });
  }

  /** Free the state's device buffers and every compiled session. */
  async release(): Promise<void> {
    disposeAll(this.#state.values());
    disposeAll(this.#acc.values());
    this.#state.clear();
    this.#acc.clear();
    this.#micro = 0;
    const programs = [...this.#programs.values()];
    this.#programs.clear();
    for (const p of programs) await (await p).release();
  }

  /** Zero accumulators, made by the zeros program (resident on webgpu). */
  async #zeros(): Promise<Map<string, Tensor>> {
    const program = await this.program("zeros");
    const out = await program.run({ [ACC_FILL]: hostTensor(this.#dtype, [], [0]) });
    return new Map(this.spec.params.map((name) => [name, out.get(accumulatorName(name))]));
  }

  #assertNoPending(what: string): void {
    if (this.#micro > 0) {
      throw new Error(
        `Trainer.${what}(${this.spec.graph.name}): ${this.#micro} micro-batches are accumulated ` +
          `but not applied; call apply() first`,
      );
    }
  }

  /** `lr` and `step` (t = updates + 1) of the next update. */
  #updateScalars(lr: number): Record<string, HostTensor> {
    return {
      lr: hostTensor(this.#dtype, [], [lr]),
      step: hostTensor(this.#dtype, [], [this.#applied + 1]),
    };
  }

  #feeds(): Record<string, Tensor> {
    return Object.fromEntries(this.#state);
  }

  /** Take the updated state from a step or apply run; free the device tensors it replaces. */
  #replaceState(out: RunOutputs): void {
    const next = new Map<string, Tensor>();
    for (const { input, output } of this.spec.state) next.set(input, out.get(output));
    disposeAll(this.#state.values());
    this.#state = next;
  }

  #count(values: Readonly<Record<string, number>>): boolean {
    const applied = values.update_applied === 1;
    if (applied) this.#applied++;
    return applied;
  }
}

/** Graph and resident outputs of each program. */
const PROGRAMS: Readonly<
  Record<TrainProgram, (s: TrainStep) => { graph: Graph; resident: string[] }>
> = {
  step: (s) => ({ graph: s.graph, resident: s.state.map((p) => p.output) }),
  accumulate: (s) => ({
    graph: s.accumulation.accumulate,
    resident: s.accumulation.accumulators.map((p) => p.output),
  }),
  apply: (s) => ({ graph: s.accumulation.apply, resident: s.state.map((p) => p.output) }),
  zeros: (s) => ({
    graph: s.accumulation.zeros,
    resident: s.accumulation.accumulators.map((p) => p.input),
  }),
};

/** Dtype and shape of every state tensor of a step (what a state file must hold). */
function stateShapes(step: TrainStep): Map<string, ExpectedTensor> {
  const inputs = new Map(step.graph.inputs.map((v) => [v.name, v]));
  return new Map(step.state.map(({ input }) => {
    const v = inputs.get(input)!;
    return [input, { dtype: v.dtype, dims: v.shape as number[] }];
  }));
}

function hostValues(out: RunOutputs, names: readonly string[]): Record<string, number> {
  return Object.fromEntries(names.map((m) => [m, out.scalar(m)]));
}

function disposeAll(tensors: Iterable<Tensor>): void {
  for (const t of tensors) if (t instanceof DeviceTensor) t.dispose();
}
