/**
 * One conformance suite for every execution provider: each EP's test file calls
 * `runConformance` with a program factory and a skip list in which every skip has a reason
 * (the pattern of honojs/hono `src/router/common.case.test.ts`).
 *
 * Each case builds a small graph, runs it through the factory, and compares with a plain
 * TypeScript reference (or, for train steps, with the CPU EP) at a tolerance stated in the case.
 */

import assert from "node:assert/strict";
import { adamwGraph, adamwReference, gradName, momentName, nextName } from "../../kernels/adamw.ts";
import { GraphBuilder } from "../../kernels/builder.ts";
import {
  chosenLogProb,
  chosenLogProbReference,
  klK3,
  klK3Reference,
  tokenEntropy,
  tokenEntropyReference,
} from "../../kernels/fused.ts";
import type { Graph } from "../../kernels/ir.ts";
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
} from "../../kernels/session.ts";
import { buildTrainStep, Trainer } from "../../kernels/train_step.ts";
import { initToyParams, mlpModel, normalStream, randomNormal } from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

/** Compiles a graph for the EP under test. */
export type ProgramFactory = (
  graph: Graph,
  options?: { residentOutputs?: readonly string[] },
) => Promise<Program>;

/** Cases skipped for one EP, with the reason. */
export interface ConformanceSkip {
  readonly reason: string;
  /** Case names, or `"*"` for all. */
  readonly cases: readonly string[] | "*";
}

/** What an EP's test file passes to `runConformance`. */
export interface ConformanceTarget {
  readonly device: Device;
  readonly createProgram: ProgramFactory;
  /** Absolute tolerance for float32 results (relative tolerance is 10× less). */
  readonly atol: number;
  readonly skip?: readonly ConformanceSkip[];
}

interface Case {
  readonly name: string;
  readonly run: (t: ConformanceTarget) => Promise<void>;
}

const feedsOf = (entries: Record<string, [readonly number[], Float32Array]>) =>
  Object.fromEntries(
    Object.entries(entries).map(([k, [dims, data]]) => [k, hostTensor("float32", dims, data)]),
  );

async function runOnce(
  t: ConformanceTarget,
  graph: Graph,
  feeds: Record<string, Tensor>,
): Promise<Map<string, HostTensor>> {
  const program = await t.createProgram(graph);
  const out = await program.run(feeds);
  const result = new Map(out.names.map((n) => [n, out.host(n)]));
  await program.release();
  return result;
}

const close = (t: ConformanceTarget) => ({ atol: t.atol, rtol: t.atol / 10 });

const CASES: readonly Case[] = [
  {
    name: "unary math matches Math.*",
    run: async (t) => {
      const b = new GraphBuilder("unary");
      const x = b.input("x", "float32", [64]);
      const ops = {
        Exp: Math.exp,
        Log: Math.log,
        Sqrt: Math.sqrt,
        Tanh: Math.tanh,
        Sigmoid: (v: number) => 1 / (1 + Math.exp(-v)),
        Reciprocal: (v: number) => 1 / v,
        Neg: (v: number) => -v,
      };
      for (const op of Object.keys(ops)) b.output(b.op1(op, [x]), op.toLowerCase());
      const data = Float32Array.from({ length: 64 }, (_, i) => 0.05 + i / 16);
      const out = await runOnce(t, b.build(), { x: hostTensor("float32", [64], data) });
      for (const [op, f] of Object.entries(ops)) {
        assertAllClose(out.get(op.toLowerCase())!.float32(), data.map(f), op, close(t));
      }
    },
  },
  {
    name: "broadcast binary ops match the reference",
    run: async (t) => {
      const b = new GraphBuilder("binary");
      const x = b.input("x", "float32", [2, 1, 4]);
      const y = b.input("y", "float32", [3, 1]);
      const ops = ["Add", "Sub", "Mul", "Div", "Max", "Min"] as const;
      for (const op of ops) b.output(b.op1(op, [x, y]), op.toLowerCase());
      const next = normalStream(21);
      const xd = randomNormal([2, 1, 4], next);
      const yd = Float32Array.from(randomNormal([3, 1], next), (v) => v + Math.sign(v) * 0.5);
      const out = await runOnce(t, b.build(), feedsOf({ x: [[2, 1, 4], xd], y: [[3, 1], yd] }));
      const f = {
        Add: (a: number, c: number) => a + c,
        Sub: (a: number, c: number) => a - c,
        Mul: (a: number, c: number) => a * c,
        Div: (a: number, c: number) => a / c,
        Max: Math.max,
        Min: Math.min,
      };
      for (const op of ops) {
        const expected: number[] = [];
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < 3; j++) {
            for (let k = 0; k < 4; k++) expected.push(f[op](xd[i * 4 + k], yd[j]));
          }
        }
        assertAllClose(out.get(op.toLowerCase())!.float32(), expected, op, close(t));
      }
    },
  },
  {
    name: "batched MatMul broadcasts batch axes",
    run: async (t) => {
      const b = new GraphBuilder("matmul");
      const x = b.input("a", "float32", [2, 1, 4, 5]);
      const y = b.input("b", "float32", [3, 5, 6]);
      b.output(b.matmul(x, y), "y"); //                                   [2,3,4,6]
      const next = normalStream(22);
      const a = randomNormal([2, 1, 4, 5], next);
      const w = randomNormal([3, 5, 6], next);
      const out = await runOnce(t, b.build(), feedsOf({ a: [[2, 1, 4, 5], a], b: [[3, 5, 6], w] }));
      const expected: number[] = [];
      for (let i = 0; i < 2; i++) {
        for (let j = 0; j < 3; j++) {
          for (let m = 0; m < 4; m++) {
            for (let n = 0; n < 6; n++) {
              let s = 0;
              for (let k = 0; k < 5; k++) s += a[i * 20 + m * 5 + k] * w[j * 30 + k * 6 + n];
              expected.push(s);
            }
          }
        }
      }
      assert.deepEqual(out.get("y")!.dims, [2, 3, 4, 6]);
      assertAllClose(out.get("y")!.float32(), expected, "MatMul", close(t));
    },
  },
  {
    name: "reductions, Softmax and ReduceLogSumExp match the reference",
    run: async (t) => {
      const b = new GraphBuilder("reduce");
      const x = b.input("x", "float32", [3, 7]);
      b.output(b.reduceSum(x, [0], false), "sum0");
      b.output(b.reduceMean(x, [1], false), "mean1");
      b.output(b.reduceMax(x, [1], false), "max1");
      b.output(b.reduceLogSumExp(x, [1], false), "lse1");
      b.output(b.softmax(x, -1), "softmax");
      const data = randomNormal([3, 7], normalStream(23), 3);
      const out = await runOnce(t, b.build(), feedsOf({ x: [[3, 7], data] }));
      const row = (r: number) => Array.from(data.subarray(r * 7, r * 7 + 7));
      const rows = [0, 1, 2].map(row);
      const lse = rows.map((r) => {
        const m = Math.max(...r);
        return m + Math.log(r.reduce((s, v) => s + Math.exp(v - m), 0));
      });
      const c = close(t);
      assertAllClose(
        out.get("sum0")!.float32(),
        Array.from({ length: 7 }, (_, j) => rows[0][j] + rows[1][j] + rows[2][j]),
        "ReduceSum",
        c,
      );
      assertAllClose(
        out.get("mean1")!.float32(),
        rows.map((r) => r.reduce((s, v) => s + v) / 7),
        "ReduceMean",
        c,
      );
      assertAllClose(out.get("max1")!.float32(), rows.map((r) => Math.max(...r)), "ReduceMax", c);
      assertAllClose(out.get("lse1")!.float32(), lse, "ReduceLogSumExp", c);
      assertAllClose(
        out.get("softmax")!.float32(),
        rows.flatMap((r, i) => r.map((v) => Math.exp(v - lse[i]))),
        "Softmax",
        c,
      );
    },
  },
  {
    name: "Gather rows and ScatterND-add with duplicate indices match the reference",
    run: async (t) => {
      const b = new GraphBuilder("embedding");
      const table = b.input("table", "float32", [5, 3]);
      const ids = b.input("ids", "int64", [4]);
      const rows = b.input("rows", "float32", [4, 3]);
      b.output(b.gather(table, ids, 0), "gathered"); //                   [4,3]
      const zeros = b.constant("float32", [5, 3], new Float32Array(15));
      b.output(b.scatterND(zeros, b.unsqueeze(ids, [-1]), rows, "add"), "scattered");
      const tableData = Float32Array.from({ length: 15 }, (_, i) => i);
      const rowData = Float32Array.from({ length: 12 }, (_, i) => i / 4);
      const idList = [3, 1, 3, 0];
      const out = await runOnce(t, b.build(), {
        table: hostTensor("float32", [5, 3], tableData),
        ids: hostTensor("int64", [4], idList),
        rows: hostTensor("float32", [4, 3], rowData),
      });
      assertAllClose(
        out.get("gathered")!.float32(),
        idList.flatMap((r) => [0, 1, 2].map((j) => tableData[r * 3 + j])),
        "Gather",
        close(t),
      );
      const expected = new Float32Array(15);
      idList.forEach((r, i) =>
        [0, 1, 2].forEach((j) => (expected[r * 3 + j] += rowData[i * 3 + j]))
      );
      assertAllClose(out.get("scattered")!.float32(), expected, "ScatterND add", close(t));
    },
  },
  {
    name: "token entropy, chosen log-prob and k3 match the references",
    run: async (t) => {
      const [B, T, V] = [2, 3, 29];
      const b = new GraphBuilder("fused");
      const logits = b.input("logits", "float32", [B, T, V]);
      const tokens = b.input("tokens", "int64", [B, T, 1]);
      const ref = b.input("ref", "float32", [B, T]);
      const logp = chosenLogProb(b, logits, tokens, { temperature: 0.8 });
      b.output(logp, "logp");
      b.output(tokenEntropy(b, logits, { temperature: 0.8 }), "entropy");
      b.output(klK3(b, logp, ref), "k3");
      const next = normalStream(24);
      const z = randomNormal([B, T, V], next, 3);
      const ids = Array.from({ length: B * T }, (_, i) => (i * 5 + 2) % V);
      const refLogp = Float32Array.from({ length: B * T }, () => -2 + next());
      const out = await runOnce(t, b.build(), {
        logits: hostTensor("float32", [B, T, V], z),
        tokens: hostTensor("int64", [B, T, 1], ids),
        ref: hostTensor("float32", [B, T], refLogp),
      });
      const expectedLogp = chosenLogProbReference(z, ids, { vocab: V, temperature: 0.8 });
      const c = close(t);
      assertAllClose(out.get("logp")!.float32(), expectedLogp, "log-prob", c);
      assertAllClose(out.get("entropy")!.float32(), tokenEntropyReference(z, V, 0.8), "entropy", c);
      assertAllClose(out.get("k3")!.float32(), klK3Reference(expectedLogp, refLogp), "k3", c);
    },
  },
  {
    name: "AdamW with clipping matches the reference",
    run: async (t) => {
      const specs = [{ name: "w", shape: [4, 3] }, { name: "b", shape: [3], decay: false }];
      const { graph } = adamwGraph(specs, { weightDecay: 0.1 });
      const next = normalStream(25);
      const values = specs.map((s) => ({
        param: randomNormal(s.shape, next),
        grad: randomNormal(s.shape, next, 2),
        m: randomNormal(s.shape, next, 0.1),
        v: Float32Array.from(randomNormal(s.shape, next, 0.1), Math.abs),
        decay: s.decay,
      }));
      const feeds: Record<string, Tensor> = {
        lr: hostTensor("float32", [], [0.05]),
        step: hostTensor("float32", [], [3]),
      };
      specs.forEach((s, i) => {
        feeds[s.name] = hostTensor("float32", s.shape, values[i].param);
        feeds[gradName(s.name)] = hostTensor("float32", s.shape, values[i].grad);
        feeds[momentName(s.name, "m")] = hostTensor("float32", s.shape, values[i].m);
        feeds[momentName(s.name, "v")] = hostTensor("float32", s.shape, values[i].v);
      });
      const out = await runOnce(t, graph, feeds);
      const expected = adamwReference(values, { lr: 0.05, step: 3, weightDecay: 0.1 });
      specs.forEach((s, i) => {
        const e = expected.params[i];
        assertAllClose(out.get(nextName(s.name))!.float32(), e.param, s.name, close(t));
        assertAllClose(
          out.get(nextName(momentName(s.name, "v")))!.float32(),
          e.v,
          `${s.name} v`,
          close(t),
        );
      });
      assertAllClose(out.get("grad_norm")!.float32(), [expected.gradNorm], "grad_norm", close(t));
    },
  },
  {
    name: "state outputs fed back into the next run give the reference result",
    run: async (t) => {
      // w ← w − 0.1·(w − target), three times: w₃ = target + 0.9³·(w₀ − target).
      const b = new GraphBuilder("relax");
      const w = b.input("w", "float32", [8]);
      const target = b.input("target", "float32", [8]);
      b.output(b.sub(w, b.mul(b.sub(w, target), b.scalar(0.1))), "w_next");
      b.output(b.reduceSum(w, [0], false), "sum");
      const program = await t.createProgram(b.build(), { residentOutputs: ["w_next"] });
      const w0 = Float32Array.from({ length: 8 }, (_, i) => i);
      const tgt = hostTensor("float32", [8], new Float32Array(8).fill(2));
      let state: Tensor = hostTensor("float32", [8], w0);
      for (let i = 0; i < 3; i++) {
        const out = await program.run({ w: state, target: tgt });
        if (state instanceof DeviceTensor) state.dispose();
        state = out.get("w_next");
        assert.equal(
          state instanceof DeviceTensor,
          t.device === "webgpu",
          "resident on webgpu only",
        );
      }
      const final = await download(state);
      if (state instanceof DeviceTensor) state.dispose();
      assertAllClose(
        final.float32(),
        w0.map((v) => 2 + 0.729 * (v - 2)),
        "w after 3 runs",
        close(t),
      );
      await program.release();
    },
  },
  {
    name: "repeated runs give identical bytes",
    run: async (t) => {
      const b = new GraphBuilder("repeat");
      const x = b.input("x", "float32", [16, 32]);
      const w = b.input("w", "float32", [32, 24]);
      b.output(b.reduceSum(b.softmax(b.matmul(x, w), -1), [0], false), "y");
      const next = normalStream(26);
      const program = await t.createProgram(b.build());
      const feeds = feedsOf({
        x: [[16, 32], randomNormal([16, 32], next)],
        w: [[32, 24], randomNormal([32, 24], next)],
      });
      const first = (await program.run(feeds)).host("y").float32();
      const second = (await program.run(feeds)).host("y").float32();
      assert.deepEqual(new Uint8Array(second.buffer), new Uint8Array(first.buffer));
      await program.release();
    },
  },
  {
    name: "an MLP train step follows the CPU EP for three AdamW steps",
    run: async (t) => {
      const model = mlpModel({ rows: 16, inputs: 3, hidden: 8, outputs: 1 });
      const step = buildTrainStep(model.graph, {
        params: model.params.map((p) => ({ name: p.name, decay: p.decay })),
      });
      const init = initToyParams(model.params, 9);
      const params = Object.fromEntries(
        model.params.map((p) => [p.name, hostTensor("float32", p.shape, init.get(p.name)!)]),
      );
      const next = normalStream(27);
      const data = feedsOf({
        x: [[16, 3], randomNormal([16, 3], next)],
        y: [[16, 1], randomNormal([16, 1], next)],
      });
      const losses = async (device: Device) => {
        const trainer = await Trainer.create(step, params, { device, threads: 2 });
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await trainer.step(data, { lr: 0.02 })).loss);
        const state = await trainer.state();
        await trainer.release();
        return { out, w: state.get("out.weight")!.float32() };
      };
      const got = await losses(t.device);
      const cpu = await losses("cpu");
      assertAllClose(got.out, cpu.out, "losses", close(t));
      assertAllClose(got.w, cpu.w, "out.weight after 3 steps", close(t));
      assert.ok(got.out[2] < got.out[0], `loss went from ${got.out[0]} to ${got.out[2]}`);
    },
  },
  {
    name: "zero-initialised moments have the declared shapes",
    run: async (t) => {
      const { graph } = adamwGraph([{ name: "w", shape: [2, 2] }], { maxGradNorm: Infinity });
      const feeds: Record<string, Tensor> = {
        w: hostTensor("float32", [2, 2], [1, 2, 3, 4]),
        "grad.w": hostTensor("float32", [2, 2], [1, 1, 1, 1]),
        "adam.m.w": zerosTensor("float32", [2, 2]),
        "adam.v.w": zerosTensor("float32", [2, 2]),
        lr: hostTensor("float32", [], [0.5]),
        step: hostTensor("float32", [], [1]),
      };
      const out = await runOnce(t, graph, feeds);
      assert.deepEqual(out.get("adam.m.w.next")!.dims, [2, 2]);
      assertAllClose(out.get("adam.m.w.next")!.float32(), [0.1, 0.1, 0.1, 0.1], "m", close(t));
    },
  },
];

/**
 * Register every conformance case as a `Deno.test` for one EP.
 *
 * @param target The EP's device, program factory, tolerance and skip list.
 */
export function runConformance(target: ConformanceTarget): void {
  const skipped = new Map<string, string>();
  for (const s of target.skip ?? []) {
    if (!s.reason) throw new Error("conformance: every skip needs a reason");
    const names = s.cases === "*" ? CASES.map((c) => c.name) : s.cases;
    for (const name of names) {
      if (!CASES.some((c) => c.name === name)) {
        throw new Error(`conformance: no case named ${name}`);
      }
      skipped.set(name, s.reason);
    }
  }
  for (const c of CASES) {
    const reason = skipped.get(c.name);
    Deno.test({
      name: `conformance on ${target.device}: ${c.name}${reason ? ` (skipped: ${reason})` : ""}`,
      ignore: reason !== undefined,
      fn: () => c.run(target),
    });
  }
}

/** Names of all cases (for skip lists). */
export const CONFORMANCE_CASES: readonly string[] = CASES.map((c) => c.name);

/** The default factory for a device. */
export function deviceFactory(device: Device): ProgramFactory {
  return (graph, options) =>
    compile(graph, { device, threads: 2, residentOutputs: options?.residentOutputs });
}
