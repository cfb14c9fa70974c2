/**
 * Compiled programs: a graph turned into an ONNX Runtime session on one execution provider, with
 * named inputs and outputs and tensor handles that cannot be misused.
 *
 * Devices:
 * - `cpu` (default): `intraOpNumThreads` is set explicitly (default: the machine's core count),
 *   because a session created without it runs like one thread (kernels/README.md §3). Results
 *   are bitwise deterministic for a given thread count.
 * - `webgpu`: outputs listed in `residentOutputs` stay on the GPU as `DeviceTensor`s
 *   (`preferredOutputLocation: 'gpu-buffer'`), the others come back to the host. Feed resident
 *   tensors into the next run and dispose the ones they replace. The Vulkan driver is prepared by
 *   `ensureWebGpuDriver()` (SwiftShader where the machine has none).
 * - `cuda`: no resident outputs exist in onnxruntime-node 1.30 (§2.4), so every run copies inputs
 *   in and outputs out; run forward, backward and optimizer as one program per step.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { compile, hostTensor } from "./session.ts";
 * const b = new GraphBuilder("double");
 * const x = b.input("x", "float32", ["n"]);
 * b.output(b.add(x, x), "y");
 * const program = await compile(b.build(), { device: "cpu", threads: 2 });
 * const out = await program.run({ x: hostTensor("float32", [3], [1, 2, 3]) });
 * out.host("y").data; // Float32Array [2, 4, 6]
 * await program.release();
 * ```
 *
 * @module
 */

import * as ort from "onnxruntime-node";
import type { DType, Graph, Value } from "./ir.ts";
import { formatShape } from "./ir.ts";
import { serializeModel } from "./onnx_proto.ts";
import { DeviceTensor, fromOrt, HostTensor, type Tensor, toOrt } from "./_tensor.ts";
import { ensureWebGpuDriver, type WebGpuDriver } from "./swiftshader.ts";

export { DeviceTensor, HostTensor, hostTensor, zerosTensor } from "./_tensor.ts";
export type { Tensor } from "./_tensor.ts";

/** Execution providers a program can run on. */
export type Device = "cpu" | "webgpu" | "cuda";

/** The devices, in order of preference for docs and errors. */
export const DEVICES: readonly Device[] = ["cpu", "webgpu", "cuda"];

/** Options of `compile`. */
export interface CompileOptions {
  /** Execution provider; default `"cpu"`. */
  device?: Device;
  /** ORT intra-op threads; default the machine's core count (`navigator.hardwareConcurrency`). */
  threads?: number;
  /**
   * Let ORT's intra-op threads spin after each run (default false). Spinning helps one session
   * run back to back, but with several sessions in a process (prefill, decode, score, train)
   * the idle spinners steal the cores: measured on 2 cores, MatMul fell from 85–112 to
   * 36–62 GFLOP/s and a batch-256 decode step went from 15–17 ms to 20 ms.
   */
  spinThreads?: boolean;
  /**
   * Outputs that stay on the device between runs (WebGPU only; on CPU and CUDA every output
   * comes back to the host, which is what "resident" means there).
   */
  residentOutputs?: readonly string[];
  /** ORT graph optimisation level; default `"all"`. */
  optimization?: "disabled" | "basic" | "extended" | "all";
  /** ORT log severity, 0 (verbose) to 4 (fatal); default 3 (errors). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Write an ORT profile (JSON) whose file name starts with this prefix; see `endProfiling`. */
  profileFilePrefix?: string;
  /** CUDA device ordinal; default 0. */
  cudaDeviceId?: number;
  /** Vulkan driver for WebGPU; see `swiftshader.ts`. */
  webgpuDriver?: WebGpuDriver;
}

/** Raised when a device's execution provider cannot be used on this machine. */
export class DeviceUnavailableError extends Error {
  /** The device that was asked for. */
  readonly device: Device;
  constructor(device: Device, message: string) {
    super(message);
    this.name = "DeviceUnavailableError";
    this.device = device;
  }
}

/** The install step named by the CUDA error. */
export const CUDA_INSTALL_HINT = "install ORT's CUDA provider with " +
  "`deno install --allow-scripts=npm:onnxruntime-node` (its postinstall downloads the CUDA 12 " +
  "provider libraries), and put CUDA 12 and cuDNN 9 on the library path (LD_LIBRARY_PATH)";

/** Named outputs of one run; `host()` and `device()` say which kind the caller expects. */
export class RunOutputs {
  readonly #program: string;
  readonly #values: ReadonlyMap<string, Tensor>;

  constructor(program: string, values: ReadonlyMap<string, Tensor>) {
    this.#program = program;
    this.#values = values;
  }

  /** Output names in graph order. */
  get names(): string[] {
    return [...this.#values.keys()];
  }

  /** The output `name`, of either kind. */
  get(name: string): Tensor {
    const t = this.#values.get(name);
    if (!t) {
      throw new Error(
        `program ${this.#program}: no output ${name}; outputs are ${this.names.join(", ")}`,
      );
    }
    return t;
  }

  /** The output `name`, which must be on the host (not resident). */
  host(name: string): HostTensor {
    const t = this.get(name);
    if (t instanceof HostTensor) return t;
    throw new Error(
      `program ${this.#program}: output ${name} is resident on ${t.location}; ` +
        `read it with download() or compile without it in residentOutputs`,
    );
  }

  /** The output `name`, which must be resident on the device. */
  device(name: string): DeviceTensor {
    const t = this.get(name);
    if (t instanceof DeviceTensor) return t;
    throw new Error(
      `program ${this.#program}: output ${name} is on the host; list it in residentOutputs ` +
        `(webgpu only) to keep it on the device`,
    );
  }

  /** The first element of host output `name` as a number (losses, metrics). */
  scalar(name: string): number {
    return Number(this.host(name).data[0]);
  }

  /** Dispose every resident output except those named in `keep`. */
  disposeExcept(keep: readonly string[] = []): void {
    for (const [name, t] of this.#values) {
      if (t instanceof DeviceTensor && !keep.includes(name)) t.dispose();
    }
  }
}

/** A graph compiled into an ORT session: named inputs, named outputs, `run(feeds)`. */
export class Program {
  readonly graph: Graph;
  readonly device: Device;
  readonly threads: number;
  /** Outputs kept on the device (empty unless webgpu). */
  readonly residentOutputs: ReadonlySet<string>;
  readonly #session: ort.InferenceSession;
  readonly #inputs: ReadonlyMap<string, Value>;

  constructor(
    graph: Graph,
    session: ort.InferenceSession,
    device: Device,
    threads: number,
    resident: ReadonlySet<string>,
  ) {
    this.graph = graph;
    this.device = device;
    this.threads = threads;
    this.residentOutputs = resident;
    this.#session = session;
    this.#inputs = new Map(graph.inputs.map((v) => [v.name, v]));
  }

  /** Input names in graph order. */
  get inputNames(): string[] {
    return this.graph.inputs.map((v) => v.name);
  }

  /** Output names in graph order. */
  get outputNames(): string[] {
    return this.graph.outputs.map((v) => v.name);
  }

  /**
   * Run once. Every graph input must be fed, with its dtype and a shape that matches the
   * declared one (static dims equal, equal symbolic names equal across inputs).
   *
   * Do not modify a fed host array before the returned promise resolves: CPU inputs are read
   * zero-copy when the run executes (kernels/README.md §3).
   *
   * @param feeds One tensor per input name.
   * @returns The outputs; resident ones as `DeviceTensor`s.
   */
  async run(feeds: Readonly<Record<string, Tensor>>): Promise<RunOutputs> {
    const ortFeeds = this.#checkFeeds(feeds);
    const result = await this.#session.run(ortFeeds);
    const values = new Map<string, Tensor>();
    for (const name of this.outputNames) values.set(name, fromOrt(result[name] as ort.Tensor));
    return new RunOutputs(this.graph.name, values);
  }

  /** Copy a tensor to the host (a host tensor is returned as is). */
  download(t: Tensor): Promise<HostTensor> {
    return download(t);
  }

  /** Flush the ORT profile (when compiled with `profileFilePrefix`). */
  endProfiling(): void {
    this.#session.endProfiling();
  }

  /** Free the session. */
  async release(): Promise<void> {
    await this.#session.release();
  }

  #checkFeeds(feeds: Readonly<Record<string, Tensor>>): Record<string, ort.Tensor> {
    const where = `program ${this.graph.name} (${this.device})`;
    for (const name of Object.keys(feeds)) {
      if (!this.#inputs.has(name)) {
        throw new Error(
          `${where}: unknown input ${name}; inputs are ${this.inputNames.join(", ")}`,
        );
      }
    }
    const symbols = new Map<string, { size: number; input: string }>();
    const out: Record<string, ort.Tensor> = {};
    for (const v of this.graph.inputs) {
      const t = feeds[v.name];
      if (!t) throw new Error(`${where}: input ${v.name} (${describe(v)}) is not fed`);
      if (t.location !== "cpu" && t.location !== this.device) {
        throw new Error(
          `${where}: input ${v.name} is a ${t.location}-resident tensor; a ${this.device} ` +
            `session cannot read it (it would compute on garbage). Bring it to the host first ` +
            `with download()`,
        );
      }
      checkShape(where, v, t, symbols);
      out[v.name] = toOrt(t, `${where}: input ${v.name}`);
    }
    return out;
  }
}

function describe(v: Value): string {
  return `${v.dtype}${formatShape(v.shape)}`;
}

function checkShape(
  where: string,
  v: Value,
  t: Tensor,
  symbols: Map<string, { size: number; input: string }>,
): void {
  const got = `${t.dtype}${formatShape(t.dims)}`;
  const bad = (why: string) =>
    new Error(`${where}: input ${v.name} expects ${describe(v)}, got ${got} (${why})`);
  if (t.dtype !== v.dtype) throw bad("dtype differs");
  if (t.dims.length !== v.shape.length) throw bad("rank differs");
  v.shape.forEach((d, i) => {
    const size = t.dims[i];
    if (typeof d === "number") {
      if (d !== size) throw bad(`axis ${i} must be ${d}`);
    } else if (!d.startsWith("?")) {
      const seen = symbols.get(d);
      if (seen && seen.size !== size) {
        throw bad(`${d} is ${seen.size} in input ${seen.input}`);
      }
      symbols.set(d, { size, input: v.name });
    }
  });
}

/**
 * Compile a graph into a program on one device.
 *
 * @param graph The graph (from `GraphBuilder.build()`, `grad`, …).
 * @param options Device, threads, resident outputs and ORT settings.
 * @returns The program.
 * @throws DeviceUnavailableError when the device's provider is missing on this machine.
 */
export async function compile(graph: Graph, options: CompileOptions = {}): Promise<Program> {
  const device = options.device ?? "cpu";
  if (!DEVICES.includes(device)) {
    throw new Error(
      `compile(${graph.name}): unknown device ${device}; expected one of ${DEVICES.join(", ")}`,
    );
  }
  const threads = options.threads ?? navigator.hardwareConcurrency;
  const outputs = new Set(graph.outputs.map((v) => v.name));
  for (const name of options.residentOutputs ?? []) {
    if (!outputs.has(name)) {
      throw new Error(
        `compile(${graph.name}): residentOutputs names ${name}, which is not an output; ` +
          `outputs are ${[...outputs].join(", ")}`,
      );
    }
  }
  const resident = new Set(device === "webgpu" ? options.residentOutputs ?? [] : []);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [PROVIDERS[device](options)],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: options.optimization ?? "all",
    logSeverityLevel: options.logSeverityLevel ?? 3,
    extra: { session: { intra_op: { allow_spinning: options.spinThreads ? "1" : "0" } } },
  };
  if (options.profileFilePrefix) {
    sessionOptions.enableProfiling = true;
    sessionOptions.profileFilePrefix = options.profileFilePrefix;
  }
  if (device === "cuda") assertCudaProviderFiles(graph.name);
  if (device === "webgpu") {
    ensureWebGpuDriver({ driver: options.webgpuDriver });
    sessionOptions.preferredOutputLocation = Object.fromEntries(
      graph.outputs.map((v) => [v.name, resident.has(v.name) ? "gpu-buffer" : "cpu"]),
    );
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(serializeModel(graph), sessionOptions);
  } catch (e) {
    throw explainCreateError(graph.name, device, e);
  }
  return new Program(graph, session, device, threads, resident);
}

type ProviderConfig = ort.InferenceSession.ExecutionProviderConfig;

/** ORT provider config of each device. */
const PROVIDERS: Readonly<Record<Device, (o: CompileOptions) => ProviderConfig>> = {
  cpu: () => "cpu",
  webgpu: () => "webgpu",
  cuda: (o) => ({ name: "cuda", deviceId: o.cudaDeviceId ?? 0 }),
};

/** Session-creation failures that mean "this device is not available here", per device. */
const UNAVAILABLE: Readonly<Record<Device, { pattern: RegExp; explain: string } | undefined>> = {
  cpu: undefined,
  webgpu: {
    pattern: /Failed to get a WebGPU adapter|No supported adapters|Couldn't load Vulkan/i,
    explain: "no Vulkan device was found for the WebGPU EP. Install a Vulkan driver for the GPU, " +
      "or set SENT_WEBGPU_DRIVER=swiftshader to use the software driver from npm:@sparticuz/chromium",
  },
  cuda: {
    pattern: /Failed to load (shared )?library|providers_(cuda|shared)|libcu|cudnn|CUDA/i,
    explain: `ONNX Runtime's CUDA execution provider is not available; ${CUDA_INSTALL_HINT}`,
  },
};

/**
 * Fail before ORT does (and before it prints its own error) when the CUDA provider libraries
 * that the onnxruntime-node postinstall downloads are missing.
 */
function assertCudaProviderFiles(name: string): void {
  if (Deno.build.os !== "linux") return; // other layouts: let ORT report
  let dir: URL;
  try {
    dir = new URL(`../bin/napi-v6/linux/x64/`, import.meta.resolve("onnxruntime-node"));
  } catch {
    return; // unusual layout: let ORT report
  }
  const missing = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"]
    .filter((f) => {
      try {
        return !Deno.statSync(new URL(f, dir)).isFile;
      } catch {
        return true;
      }
    });
  if (missing.length === 0) return;
  throw new DeviceUnavailableError(
    "cuda",
    `compile(${name}) on cuda: ${UNAVAILABLE.cuda!.explain}. Missing: ${missing.join(", ")} ` +
      `in ${dir.pathname}`,
  );
}

function explainCreateError(name: string, device: Device, e: unknown): Error {
  const message = e instanceof Error ? e.message : String(e);
  const rule = UNAVAILABLE[device];
  if (rule && rule.pattern.test(message)) {
    return new DeviceUnavailableError(
      device,
      `compile(${name}) on ${device}: ${rule.explain}. ORT said: ${message.split("\n")[0]}`,
    );
  }
  return e instanceof Error ? e : new Error(message);
}

// ----- moving tensors between host and device ---------------------------------------------------

const copyPrograms = new Map<string, Promise<Program>>();

function copyProgram(dtype: DType, rank: number, to: "host" | "device"): Promise<Program> {
  const key = `${dtype}/${rank}/${to}`;
  let p = copyPrograms.get(key);
  if (!p) {
    const shape = Array.from({ length: rank }, (_, i) => `d${i}`);
    const graph: Graph = {
      name: `copy_to_${to}`,
      inputs: [{ name: "x", dtype, shape }],
      outputs: [{ name: "y", dtype, shape }],
      nodes: [{
        op: "Identity",
        domain: "",
        inputs: [{ name: "x", dtype, shape }],
        outputs: [{ name: "y", dtype, shape }],
        attrs: {},
      }],
      initializers: [],
      opset: 20,
    };
    p = compile(graph, { device: "webgpu", residentOutputs: to === "device" ? ["y"] : [] });
    copyPrograms.set(key, p);
  }
  return p;
}

/**
 * Copy a tensor to the host. A `DeviceTensor` goes through a one-node Identity WebGPU session
 * whose output is on the CPU (the only safe read path in onnxruntime-node 1.30); the device
 * tensor stays valid.
 *
 * @param t The tensor.
 * @returns A host tensor with the same dtype, shape and values.
 */
export async function download(t: Tensor): Promise<HostTensor> {
  if (t instanceof HostTensor) return t;
  const program = await copyProgram(t.dtype, t.dims.length, "host");
  return (await program.run({ x: t })).host("y");
}

/**
 * Copy a host tensor onto the WebGPU device (a device tensor is returned as is).
 *
 * @param t The tensor.
 * @returns A resident tensor; dispose it when done.
 */
export async function upload(t: Tensor): Promise<DeviceTensor> {
  if (t instanceof DeviceTensor) return t;
  const program = await copyProgram(t.dtype, t.dims.length, "device");
  return (await program.run({ x: t })).device("y");
}
