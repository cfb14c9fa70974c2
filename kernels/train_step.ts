/**
 * One training step as one graph: forward (the loss graph), backward (`gradInto`) and the AdamW
 * update (`adamwInto`), so parameters cross the host–device boundary at most once each way per
 * step (onnxruntime-notes.md §8.3). `Trainer` runs it in a loop and owns the state.
 *
 * State handling per device:
 * - `webgpu`: parameters and moments are resident outputs (`gpu-buffer`); each step feeds the
 *   previous step's device tensors back in and disposes them once replaced. Metrics (loss,
 *   `grad_norm`, `update_applied`) come back to the host. `state()` downloads for checkpoints.
 * - `cpu`, `cuda`: the state comes back as host tensors each step and is fed back zero-copy.
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
 * await trainer.release();
 * ```
 *
 * @module
 */

import { gradInto } from "./autodiff.ts";
import { adamwInto, type AdamWOptions, type StatePair } from "./adamw.ts";
import { GraphBuilder } from "./builder.ts";
import type { Graph, Value } from "./ir.ts";
import {
  compile,
  type Device,
  DeviceTensor,
  download,
  type HostTensor,
  hostTensor,
  type Program,
  type Tensor,
  zerosTensor,
} from "./session.ts";
import type { WebGpuDriver } from "./swiftshader.ts";

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

/** A built train step. */
export interface TrainStep {
  readonly graph: Graph;
  /** Parameters and moments: the input each step reads and the output that replaces it. */
  readonly state: readonly StatePair[];
  /** Parameter names, in the order given. */
  readonly params: readonly string[];
  /** Host outputs: the loss, `grad_norm`, `update_applied`, then the extra metrics. */
  readonly metrics: readonly string[];
  /** Inputs the caller feeds each step (everything but the state, `lr` and `step`). */
  readonly data: readonly string[];
}

/**
 * Compose forward, backward and the AdamW update into one step graph.
 *
 * @param lossGraph Forward graph with the parameters as inputs and a scalar loss output.
 * @param options Parameters, loss name, kept metrics, AdamW hyperparameters.
 * @returns The step graph and its naming.
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
  const b = GraphBuilder.from(lossGraph);
  const keep = new Set([lossName, ...(options.metrics ?? [])]);
  for (const name of keep) {
    if (!lossGraph.outputs.some((v) => v.name === name)) {
      throw new Error(`${where}: metric ${name} is not an output of the loss graph`);
    }
  }
  const kept = b.outputs.filter((v) => keep.has(v.name));
  b.outputs.splice(0, b.outputs.length, ...kept);
  const grads = gradInto(b, loss, values);
  const parts = adamwInto(
    b,
    params.map((p, i) => ({ name: p.name, param: values[i], grad: grads[i], decay: p.decay })),
    options,
  );
  const graph = b.build();
  const stateInputs = new Set(parts.state.map((s) => s.input));
  return {
    graph: { ...graph, name: `${lossGraph.name}_train_step` },
    state: parts.state,
    params: params.map((p) => p.name),
    metrics: [lossName, parts.gradNorm.name, parts.applied.name, ...(options.metrics ?? [])],
    data: graph.inputs
      .map((v) => v.name)
      .filter((n) => !stateInputs.has(n) && n !== parts.lr.name && n !== parts.step.name),
  };
}

/** Options of `Trainer.create`. */
export interface TrainerOptions {
  /** Device; default `"cpu"`. */
  device?: Device;
  /** ORT intra-op threads; default the machine's core count. */
  threads?: number;
  /** Vulkan driver for WebGPU. */
  webgpuDriver?: WebGpuDriver;
}

/** Metrics of one step: the loss, the gradient norm, whether the update was applied, extras. */
export interface StepMetrics {
  readonly loss: number;
  readonly gradNorm: number;
  readonly applied: boolean;
  /** Every host metric by output name. */
  readonly values: Readonly<Record<string, number>>;
}

/** Runs a `TrainStep` repeatedly, keeping parameters and moments between steps. */
export class Trainer {
  /** The step this trainer runs. */
  readonly spec: TrainStep;
  readonly program: Program;
  #state: Map<string, Tensor>;
  #applied = 0;

  private constructor(step: TrainStep, program: Program, state: Map<string, Tensor>) {
    this.spec = step;
    this.program = program;
    this.#state = state;
  }

  /**
   * Compile a step and set its initial state (moments start at zero).
   *
   * @param step From `buildTrainStep`.
   * @param params Initial value of every parameter.
   * @param options Device and threads.
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
    const program = await compile(step.graph, {
      device: options.device,
      threads: options.threads,
      webgpuDriver: options.webgpuDriver,
      residentOutputs: step.state.map((s) => s.output),
    });
    return new Trainer(step, program, state);
  }

  /** Number of updates applied so far (skipped steps do not count, as in the bias correction). */
  get updates(): number {
    return this.#applied;
  }

  /** The current state handles (device tensors on webgpu; they have no data accessor). */
  get stateTensors(): ReadonlyMap<string, Tensor> {
    return this.#state;
  }

  /** True when the state lives on the device between steps. */
  get resident(): boolean {
    return [...this.#state.values()].some((t) => t instanceof DeviceTensor);
  }

  /**
   * Run one step: forward, backward, clip, AdamW update.
   *
   * @param data One tensor per data input (`step.data`).
   * @param options Learning rate of this step.
   * @returns The step's metrics.
   */
  async step(
    data: Readonly<Record<string, Tensor>>,
    options: { lr: number },
  ): Promise<StepMetrics> {
    const dtype = this.program.graph.inputs.find((v) => v.name === "lr")!.dtype;
    const feeds: Record<string, Tensor> = {
      ...data,
      lr: hostTensor(dtype, [], [options.lr]),
      step: hostTensor(dtype, [], [this.#applied + 1]),
    };
    for (const [name, t] of this.#state) feeds[name] = t;
    const out = await this.program.run(feeds);
    const next = new Map<string, Tensor>();
    for (const { input, output } of this.spec.state) next.set(input, out.get(output));
    for (const old of this.#state.values()) if (old instanceof DeviceTensor) old.dispose();
    this.#state = next;
    const values = Object.fromEntries(this.spec.metrics.map((m) => [m, out.scalar(m)]));
    const applied = values.update_applied === 1;
    if (applied) this.#applied++;
    return {
      loss: values[this.spec.metrics[0]],
      gradNorm: values.grad_norm,
      applied,
      values,
    };
  }

  /** The current parameters and moments, on the host (downloads resident state). */
  async state(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [name, t] of this.#state) out.set(name, await download(t));
    return out;
  }

  /** Free the state's device buffers and the session. */
  async release(): Promise<void> {
    for (const t of this.#state.values()) if (t instanceof DeviceTensor) t.dispose();
    this.#state.clear();
    await this.program.release();
  }
}
