/**
 * Finite-difference gradient checks through ONNX Runtime, one line per case.
 *
 * A case names an op, its inputs (shapes, dtypes, how values are drawn) and a forward builder.
 * `gradcheck` builds the forward graph y = f(x…), differentiates it with `grad()` against a
 * random seed r (so L = Σ r ⊙ y and every element of y matters), runs both in real CPU-EP
 * sessions, and compares each analytic dL/dx element with the central difference
 * (L(x + ε) − L(x − ε)) / 2ε computed with the forward session. It also fails when the
 * backward nodes contain an op that would leave the WebGPU EP (`webgpuHazards`), unless the
 * case says why that is accepted.
 *
 * @example
 * ```ts
 * await gradcheck({ op: "Exp", name: "Exp", inputs: [{ shape: [3, 4] }], build: (b, [x]) => b.exp(x) });
 * ```
 *
 * @module
 */

import * as ort from "onnxruntime-node";
import { GraphBuilder } from "../../kernels/builder.ts";
import { grad } from "../../kernels/autodiff.ts";
import type { Dim, DType, Graph, Node, Value } from "../../kernels/ir.ts";
import { FLOAT_DTYPES, formatShape } from "../../kernels/ir.ts";
import { serializeModel } from "../../kernels/onnx_proto.ts";

/**
 * How an input's values are drawn:
 * - `normal`: N(0, 1);
 * - `positive`: uniform in [0.5, 2] (Log, Sqrt, Pow bases, divisors);
 * - `uniform`: uniform in [−1, 1];
 * - `apart`: a shuffled grid with gaps of 0.1 and no zero (no ties, no kinks within ε: Max,
 *   Abs, Relu, Clip);
 * - `{ ints: [lo, hi] }`: integers in [lo, hi] (indices);
 * - `bool`: random booleans;
 * - a number list: these values.
 */
export type Gen =
  | "normal"
  | "positive"
  | "uniform"
  | "apart"
  | "bool"
  | { readonly ints: readonly [number, number] }
  | readonly number[];

/** One input of a case. */
export interface InputSpec {
  /** Concrete shape fed at run time. */
  readonly shape: readonly number[];
  /** Declared shape, symbolic dims allowed (default: `shape`). */
  readonly declared?: readonly Dim[];
  /** Element type (default: the case's float dtype). */
  readonly dtype?: DType;
  /** How values are drawn (default `normal`). */
  readonly gen?: Gen;
  /** Differentiate with respect to it (default: true for float inputs). */
  readonly wrt?: boolean;
}

/** One gradient check: an entry of the op database. */
export interface GradCase {
  /** The op whose rule the case covers. */
  readonly op: string;
  /** What is special about the case, e.g. "batched, broadcast batch dims". */
  readonly name: string;
  readonly inputs: readonly InputSpec[];
  /** Forward: the value whose gradient is checked. */
  readonly build: (b: GraphBuilder, xs: Value[]) => Value;
  /** float64 (default) or float32 where the CPU EP has no double kernel. */
  readonly dtype?: "float32" | "float64";
  /** Pass when |analytic − numeric| ≤ atol + rtol·|numeric| (defaults by dtype). */
  readonly atol?: number;
  readonly rtol?: number;
  /** Finite-difference step (defaults by dtype). */
  readonly eps?: number;
  /** Why the case is not run (it stays in the table, listed as ignored). */
  readonly skip?: string;
  /** Why backward ops that leave the WebGPU EP are accepted in this case. */
  readonly cpuFallback?: string;
}

/** What a check measured. */
export interface GradcheckReport {
  /** Elements compared. */
  readonly checked: number;
  /** Largest |analytic − numeric|. */
  readonly maxAbsError: number;
  /** The gradient graph that was checked. */
  readonly graph: Graph;
}

const DEFAULTS = {
  float64: { eps: 1e-6, atol: 1e-6, rtol: 1e-5 },
  float32: { eps: 3e-3, atol: 3e-3, rtol: 2e-2 },
} as const;

/** Session options for tests: one thread keeps results reproducible and leaves a core free. */
export const TEST_SESSION: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
};

/**
 * Check a case's gradients against central differences; throws with the worst element.
 *
 * @param c The case.
 * @param options `seed` of the value generator (default: derived from the case name).
 * @returns Elements compared, the largest error and the gradient graph.
 */
export async function gradcheck(
  c: GradCase,
  options: { seed?: number } = {},
): Promise<GradcheckReport> {
  const dtype = c.dtype ?? "float64";
  const tol = { ...DEFAULTS[dtype], ...definedOnly({ eps: c.eps, atol: c.atol, rtol: c.rtol }) };
  const rng = new Rng(options.seed ?? hashString(`${c.op}:${c.name}`));
  const specs = c.inputs.map((s) => ({ ...s, dtype: s.dtype ?? dtype }));
  const feeds: Record<string, ort.Tensor> = {};
  specs.forEach((s, i) => (feeds[`x${i}`] = tensorOf(s.dtype, s.shape, drawValues(rng, s))));

  const b = new GraphBuilder(`check_${c.op}`);
  const xs = specs.map((s, i) => b.input(`x${i}`, s.dtype, s.declared ?? s.shape));
  b.output(c.build(b, xs), "y");
  const forward = b.build();
  const wrt = specs.flatMap((
    s,
    i,
  ) => (FLOAT_DTYPES.has(s.dtype) && s.wrt !== false ? [`x${i}`] : []));
  const graph = grad(forward, "y", wrt, { seed: "dy" });

  const hazards = webgpuHazards(graph.nodes.slice(forward.nodes.length));
  if (hazards.length > 0 && !c.cpuFallback) {
    throw new Error(`${c.op} (${c.name}): backward leaves the WebGPU EP: ${hazards.join("; ")}`);
  }

  const fwd = await ort.InferenceSession.create(serializeModel(forward), TEST_SESSION);
  const bwd = await ort.InferenceSession.create(serializeModel(graph), TEST_SESSION);
  const y0 = (await fwd.run(feeds)).y;
  const r = tensorOf(dtype, y0.dims, drawValues(rng, { shape: y0.dims, gen: "normal" }));
  const analytic = await bwd.run({ ...feeds, dy: r });
  const rv = r.data as Float64Array | Float32Array;
  const lossAt = async (f: Record<string, ort.Tensor>) => {
    const y = (await fwd.run(f)).y.data as Float64Array | Float32Array;
    let s = 0;
    for (let j = 0; j < y.length; j++) s += rv[j] * y[j];
    return s;
  };

  let checked = 0;
  let worst = { err: 0, text: "" };
  for (const name of wrt) {
    const x = feeds[name];
    const got = analytic[`grad.${name}`];
    if (formatShape(got.dims) !== formatShape(x.dims)) {
      throw new Error(
        `${c.op} (${c.name}): grad.${name} has shape ${formatShape(got.dims)}, input has ${
          formatShape(x.dims)
        }`,
      );
    }
    const xv = x.data as Float64Array | Float32Array;
    const gv = got.data as Float64Array | Float32Array;
    for (let j = 0; j < xv.length; j++) {
      const plus = xv.slice();
      const minus = xv.slice();
      plus[j] += tol.eps;
      minus[j] -= tol.eps;
      const hi = await lossAt({ ...feeds, [name]: new ort.Tensor(dtype, plus, x.dims) });
      const lo = await lossAt({ ...feeds, [name]: new ort.Tensor(dtype, minus, x.dims) });
      const numeric = (hi - lo) / (plus[j] - minus[j]);
      const err = Math.abs(gv[j] - numeric);
      checked++;
      if (err > worst.err) {
        worst = {
          err,
          text: `grad.${name}[${j}] analytic ${gv[j]} vs numeric ${numeric}`,
        };
      }
      if (err > tol.atol + tol.rtol * Math.abs(numeric)) {
        throw new Error(
          `${c.op} (${c.name}): grad.${name}[${j}] = ${gv[j]}, central difference ${numeric} ` +
            `(|diff| ${err.toExponential(2)} > atol ${tol.atol} + rtol ${tol.rtol}·|numeric|)`,
        );
      }
    }
  }
  await fwd.release();
  await bwd.release();
  return { checked, maxAbsError: worst.err, graph };
}

// ----- WebGPU lint --------------------------------------------------------------------------

/** Ops that the WebGPU EP of ORT 1.30 hands to the CPU (kernels/README.md §2). */
const CPU_ONLY_OPS = new Set([
  "LogSoftmax",
  "Sum",
  "Mean",
  "OneHot",
  "Sign",
  "IsNaN",
  "Mod",
  "ConstantOfShape",
  "RandomUniform",
  "RandomUniformLike",
  "RandomNormal",
  "RandomNormalLike",
  "Dropout",
  "SoftmaxCrossEntropyLoss",
  "NegativeLogLikelihoodLoss",
]);

/** Ops whose int64 operands send them to the CPU under WebGPU. */
const INT64_ARITHMETIC = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Neg",
  "Abs",
  "Max",
  "Min",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "Where",
  "Range",
]);

/**
 * Ops that only move or select elements. The WebGPU EP has none of them for int64 data (measured
 * with `checkPlacement`: an int64 graph input can feed Gather/Scatter indices, nothing else), and
 * no Slice or GatherElements for int32 data either.
 */
const INT64_MOVES = new Set([
  "Identity",
  "Reshape",
  "Unsqueeze",
  "Squeeze",
  "Concat",
  "Split",
  "Slice",
  "Transpose",
  "Expand",
  "Gather",
  "GatherElements",
]);
const INT32_MOVES = new Set(["Slice", "GatherElements"]);

/**
 * Name the nodes that would fall back to the CPU under the WebGPU EP: CPU-only ops, other
 * domains (com.microsoft), int64 arithmetic, comparisons, Where, Casts from int64, and int64
 * (for some ops int32) data moved by shape and selection ops.
 *
 * @param nodes The nodes to check (e.g. the backward part of a gradient graph).
 * @returns One line per offending node; empty when all stay on the GPU.
 */
export function webgpuHazards(nodes: readonly Node[]): string[] {
  return nodes.flatMap((n) => {
    const outs = n.outputs.map((o) => o.name).join(",");
    if (n.domain) return [`${n.domain}.${n.op} → ${outs}`];
    if (CPU_ONLY_OPS.has(n.op)) return [`${n.op} → ${outs}`];
    const data = n.op === "Where" ? n.inputs.slice(1) : n.inputs;
    if (INT64_ARITHMETIC.has(n.op) && data.some((v) => v?.dtype === "int64")) {
      return [`${n.op} on int64 → ${outs}`];
    }
    if (n.op === "Cast" && n.inputs[0]?.dtype === "int64") return [`Cast from int64 → ${outs}`];
    const moved = n.outputs[0]?.dtype;
    if (
      (moved === "int64" && INT64_MOVES.has(n.op)) || (moved === "int32" && INT32_MOVES.has(n.op))
    ) {
      return [`${n.op} of ${moved} → ${outs}`];
    }
    return [];
  });
}

// ----- values -------------------------------------------------------------------------------

/** A small seeded generator (mulberry32) with normal draws. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** FNV-1a hash of a string, as a generator seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Draw an input's values as plain numbers. */
export function drawValues(rng: Rng, s: { shape: readonly number[]; gen?: Gen }): number[] {
  const n = s.shape.reduce((p, d) => p * d, 1);
  const gen = s.gen ?? "normal";
  if (Array.isArray(gen)) {
    if (gen.length !== n) throw new Error(`gen has ${gen.length} values for ${n} elements`);
    return [...gen];
  }
  if (gen === "apart") {
    const grid = Array.from({ length: n }, (_, i) => (i - n / 2 + 0.5) * 0.1 + 0.03);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng.next() * (i + 1));
      [grid[i], grid[j]] = [grid[j], grid[i]];
    }
    return grid;
  }
  const draw: Record<string, () => number> = {
    normal: () => rng.normal(),
    positive: () => 0.5 + 1.5 * rng.next(),
    uniform: () => 2 * rng.next() - 1,
    bool: () => (rng.next() < 0.5 ? 0 : 1),
  };
  if (typeof gen === "object" && "ints" in gen) {
    const [lo, hi] = gen.ints;
    return Array.from({ length: n }, () => lo + Math.floor(rng.next() * (hi - lo + 1)));
  }
  return Array.from({ length: n }, draw[gen as string]);
}

/** An ORT tensor of a dtype from plain numbers. */
export function tensorOf(dtype: DType, dims: readonly number[], values: number[]): ort.Tensor {
  const typed: Record<string, () => ort.Tensor["data"]> = {
    float64: () => Float64Array.from(values),
    float32: () => Float32Array.from(values),
    int64: () => BigInt64Array.from(values, (v) => BigInt(v)),
    int32: () => Int32Array.from(values),
    bool: () => Uint8Array.from(values),
  };
  if (!typed[dtype]) throw new Error(`tensorOf(): unsupported dtype ${dtype}`);
  return new ort.Tensor(dtype as "float32", typed[dtype]() as Float32Array, [...dims]);
}

function definedOnly<T extends Record<string, number | undefined>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
