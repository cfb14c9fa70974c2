/**
 * The autodiff driver: what reaches which value, and how it fails. Numeric checks use real
 * CPU-EP sessions; the per-op rules have their own finite-difference suite (grad_rules_test.ts).
 */

import { deepEqual, equal, match, ok, throws } from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { GraphBuilder } from "../../kernels/builder.ts";
import { grad, gradInto } from "../../kernels/autodiff.ts";
import { GRAD_RULES } from "../../kernels/grad_rules.ts";
import type { GradRule } from "../../kernels/grad_rules.ts";
import type { Graph, Value } from "../../kernels/ir.ts";
import { serializeModel } from "../../kernels/onnx_proto.ts";
import { drawValues, gradcheck, Rng, tensorOf, TEST_SESSION, webgpuHazards } from "./_gradcheck.ts";

type Feeds = Record<string, ort.Tensor>;

async function run(graph: Graph, feeds: Feeds): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(serializeModel(graph), TEST_SESSION);
  const out = await s.run(feeds);
  await s.release();
  return out;
}

function f64(dims: number[], values: number[]): ort.Tensor {
  return tensorOf("float64", dims, values);
}

function values(t: ort.Tensor): number[] {
  return Array.from(t.data as Float64Array);
}

/** A two-layer MLP with a mean-squared-error loss; x is [batch, 3]. */
function mlp(dtype: "float32" | "float64" = "float64"): Graph {
  const b = new GraphBuilder("mlp");
  const x = b.input("x", dtype, ["batch", 3]);
  const t = b.input("t", dtype, ["batch", 1]);
  const w1 = b.input("w1", dtype, [3, 4]);
  const b1 = b.input("b1", dtype, [4]);
  const w2 = b.input("w2", dtype, [4, 1]);
  const h = b.tanh(b.add(b.matmul(x, w1), b1));
  const err = b.sub(b.matmul(h, w2), t);
  b.output(b.reduceMean(b.mul(err, err), [0, 1], false), "loss");
  return b.build();
}

function mlpFeeds(batch: number, seed = 1): Feeds {
  const rng = new Rng(seed);
  const draw = (shape: number[]) => f64(shape, drawValues(rng, { shape }));
  return {
    x: draw([batch, 3]),
    t: draw([batch, 1]),
    w1: draw([3, 4]),
    b1: draw([4]),
    w2: draw([4, 1]),
  };
}

Deno.test("grad() appends one output per wrt value, named grad.<name>", () => {
  const g = grad(mlp(), "loss", ["w1", "b1", "w2"]);
  deepEqual(g.outputs.map((o) => o.name), ["loss", "grad.w1", "grad.b1", "grad.w2"]);
  deepEqual(g.outputs.slice(1).map((o) => o.shape), [[3, 4], [4], [4, 1]]);
  const named = grad(mlp(), "loss", ["w2"], { names: ["dw2"] });
  deepEqual(named.outputs.map((o) => o.name), ["loss", "dw2"]);
});

Deno.test("grad() of an MLP matches central differences, the same graph at two batch sizes", async () => {
  const g = grad(mlp(), "loss", ["x", "w1", "b1", "w2"]);
  const fwd = mlp();
  for (const batch of [2, 5]) {
    const feeds = mlpFeeds(batch);
    const analytic = await run(g, feeds);
    for (const name of ["x", "w1", "b1", "w2"]) {
      const xv = feeds[name].data as Float64Array;
      for (let j = 0; j < xv.length; j++) {
        const bump = (d: number) => {
          const v = xv.slice();
          v[j] += d;
          return { ...feeds, [name]: f64(feeds[name].dims as number[], Array.from(v)) };
        };
        const hi = values((await run(fwd, bump(1e-6))).loss)[0];
        const lo = values((await run(fwd, bump(-1e-6))).loss)[0];
        const numeric = (hi - lo) / 2e-6;
        const got = values(analytic[`grad.${name}`])[j];
        ok(
          Math.abs(got - numeric) < 1e-6,
          `batch ${batch} grad.${name}[${j}]: ${got} vs ${numeric}`,
        );
      }
    }
  }
});

Deno.test("grad() sums the gradients of a value used several times with chained Adds", async () => {
  // y = x·x + sin(x) + x: dy/dx = 2x + cos(x) + 1, three uses of x (four inputs of nodes).
  const report = await gradcheck({
    op: "fan-out",
    name: "x used four times",
    inputs: [{ shape: [5] }],
    build: (b, [x]) => b.add(b.add(b.mul(x, x), b.sin(x)), x),
  });
  const ops = report.graph.nodes.map((n) => n.op);
  ok(!ops.includes("Sum"), "variadic Sum falls back to the CPU under WebGPU");
  const feeds = { x: f64([3], [0.1, -0.4, 2]), dy: f64([3], [1, 1, 1]) };
  const b = new GraphBuilder("fanout");
  const x = b.input("x", "float64", [3]);
  b.output(b.add(b.add(b.mul(x, x), b.sin(x)), x), "y");
  const out = await run(grad(b.build(), "y", ["x"], { seed: "dy" }), feeds);
  values(out["grad.x"]).forEach((g, i) => {
    const xv = [0.1, -0.4, 2][i];
    ok(Math.abs(g - (2 * xv + Math.cos(xv) + 1)) < 1e-12);
  });
});

Deno.test("grad() gives zeros to a wrt value the loss does not depend on", async () => {
  const b = new GraphBuilder("unused");
  const x = b.input("x", "float64", ["n", 2]);
  const unused = b.input("unused", "float64", ["n", 3]);
  b.input("never_read", "float64", [4]);
  b.output(b.reduceSum(b.exp(x), [0, 1], false), "loss");
  b.output(b.tanh(unused), "side"); // depends on `unused`, but is not the loss
  const g = grad(b.build(), "loss", ["x", "unused", "never_read"]);
  deepEqual(g.outputs.map((o) => o.shape), [[], ["n", 3], ["n", 2], ["n", 3], [4]]);
  ok(!g.nodes.some((n) => n.op === "Tanh" && n.inputs[0]?.name !== "unused"), "no Tanh backward");
  const out = await run(g, {
    x: f64([2, 2], [0, 1, 2, 3]),
    unused: f64([2, 3], [1, 2, 3, 4, 5, 6]),
    never_read: f64([4], [1, 1, 1, 1]),
  });
  deepEqual(values(out["grad.unused"]), [0, 0, 0, 0, 0, 0]);
  deepEqual(values(out["grad.never_read"]), [0, 0, 0, 0]);
  values(out["grad.x"]).forEach((v, i) => ok(Math.abs(v - Math.exp(i)) < 1e-12));
});

Deno.test("grad() passes no gradient into integer inputs and refuses an integer wrt", async () => {
  const b = new GraphBuilder("ints");
  const table = b.input("table", "float64", [4, 2]);
  const ids = b.input("ids", "int64", [3]);
  const counts = b.input("counts", "int32", [3]);
  const rows = b.gather(table, ids); // [3,2]
  const scaled = b.mul(rows, b.unsqueeze(b.cast(counts, "float64"), [1]));
  b.output(b.reduceSum(scaled, [0, 1], false), "loss");
  const graph = b.build();
  throws(() => grad(graph, "loss", ["ids"]), /wrt value ids has dtype int64; only float values/);
  const out = await run(grad(graph, "loss", ["table"]), {
    table: f64([4, 2], [1, 2, 3, 4, 5, 6, 7, 8]),
    ids: tensorOf("int64", [3], [3, 0, 3]),
    counts: tensorOf("int32", [3], [2, 5, 1]),
  });
  // Row 3 is gathered twice (counts 2 and 1), row 0 once (count 5).
  deepEqual(values(out["grad.table"]), [5, 5, 0, 0, 0, 0, 3, 3]);
});

Deno.test("grad() treats a stopGradient value as a constant", async () => {
  // loss = Σ x · sg(x): the gradient is sg(x) = x, not 2x.
  const b = new GraphBuilder("stop");
  const x = b.input("x", "float64", [3]);
  b.output(b.reduceSum(b.mul(x, b.stopGradient(x)), [0], false), "loss");
  const out = await run(grad(b.build(), "loss", ["x"]), { x: f64([3], [1, -2, 3]) });
  deepEqual(values(out["grad.x"]), [1, -2, 3]);
});

Deno.test("grad() differentiates with respect to intermediate values", async () => {
  const b = new GraphBuilder("mid");
  const x = b.input("x", "float64", [2]);
  const h = b.exp(x);
  b.output(b.reduceSum(b.mul(h, h), [0], false), "loss");
  const g = grad(b.build(), "loss", [h, x]);
  const out = await run(g, { x: f64([2], [0, 1]) });
  const e = [1, Math.E];
  values(out[`grad.${h.name}`]).forEach((v, i) => ok(Math.abs(v - 2 * e[i]) < 1e-12));
  values(out["grad.x"]).forEach((v, i) => ok(Math.abs(v - 2 * e[i] * e[i]) < 1e-12));
});

Deno.test("grad() needs a seed for a non-scalar loss and checks its shape", async () => {
  const b = new GraphBuilder("vector");
  const x = b.input("x", "float64", [3]);
  b.output(b.mul(x, x), "y");
  const graph = b.build();
  throws(
    () => grad(graph, "y", ["x"]),
    /loss y has shape \[3\]; a loss that is not a scalar needs a seed/,
  );
  const out = await run(grad(graph, "y", ["x"], { seed: "dy" }), {
    x: f64([3], [1, 2, 3]),
    dy: f64([3], [1, 0, -1]),
  });
  deepEqual(values(out["grad.x"]), [2, 0, -6]);
  const gb = GraphBuilder.from(graph);
  const bad = gb.input("bad_seed", "float64", [4]);
  throws(
    () => gradInto(gb, graph.outputs[0], [graph.inputs[0]], bad),
    /seed bad_seed is float64\[4\]; expected the loss's float64\[3\]/,
  );
});

Deno.test("grad() names an unknown value and the missing rule of an op on the path", () => {
  throws(
    () => grad(mlp(), "loss", ["w3"]),
    /no value named w3 in graph mlp; expected a graph input/,
  );
  const { Tanh: _, ...withoutTanh } = GRAD_RULES;
  throws(
    () => grad(mlp(), "loss", ["w1"], { rules: withoutTanh }),
    /no gradient rule for op Tanh \(node producing tanh\), which lies between \[w1\] and the loss/,
  );
  // The same table is fine when the op is off the path from wrt to the loss.
  const g = grad(mlp(), "loss", ["w2"], { rules: withoutTanh });
  equal(g.outputs.at(-1)!.name, "grad.w2");
});

Deno.test("grad() asserts that a rule returns one gradient per input of the right shape", () => {
  const short: GradRule = { kind: "uses-output", grad: () => [] };
  throws(
    () => grad(mlp(), "loss", ["w1"], { rules: { ...GRAD_RULES, Tanh: short } }),
    /the rule for Tanh returned 0 gradients for 1 inputs; expected one per input/,
  );
  const wrongShape: GradRule = {
    kind: "uses-output",
    grad: (c) => [c.b.reduceSum(c.dy[0]!, [1], true)],
  };
  throws(
    () => grad(mlp(), "loss", ["w1"], { rules: { ...GRAD_RULES, Tanh: wrongShape } }),
    /the rule for Tanh gave input 0 \(add: float64\[batch,4\]\) a gradient of float64\[batch,1\]/,
  );
  const extra: GradRule = { kind: "linear", grad: (c) => [c.dy[0], c.dy[0]] };
  throws(
    () => grad(mlp(), "loss", ["w1"], { rules: { ...GRAD_RULES, Add: extra } }),
    /the rule for Add returned a gradient for input 1 \(b1\), which needs none/,
  );
});

Deno.test("gradInto() lets an update follow the gradients in the same graph", async () => {
  // Ten SGD steps on the MLP, each one session run of forward + backward + update.
  const fwd = mlp();
  const b = GraphBuilder.from(fwd);
  const params = ["w1", "b1", "w2"].map((n) => fwd.inputs.find((v) => v.name === n)!);
  const grads = gradInto(b, fwd.outputs[0], params);
  const lr = b.scalar(0.2, "float64");
  params.forEach((p, i) => b.output(b.sub(p, b.mul(grads[i], lr)), `${p.name}.next`));
  const s = await ort.InferenceSession.create(serializeModel(b.build()), TEST_SESSION);
  let feeds = mlpFeeds(8, 3);
  const losses: number[] = [];
  for (let step = 0; step < 10; step++) {
    const out = await s.run(feeds);
    losses.push(values(out.loss)[0]);
    feeds = { ...feeds, w1: out["w1.next"], b1: out["b1.next"], w2: out["w2.next"] };
  }
  await s.release();
  ok(losses[9] < 0.8 * losses[0], `loss went from ${losses[0]} to ${losses[9]}`);
});

Deno.test("MatMul of activations by a 2-D weight differentiates with Gemms, no transposed copies", () => {
  const b = new GraphBuilder("linear");
  const x = b.input("x", "float32", ["batch", "time", 16]);
  const w = b.input("w", "float32", [16, 8]);
  b.output(b.reduceSum(b.matmul(x, w), [0, 1, 2], false), "loss");
  const fwd = b.build();
  const backward = grad(fwd, "loss", ["x", "w"]).nodes.slice(fwd.nodes.length);
  const gemms = backward.filter((n) => n.op === "Gemm");
  equal(gemms.length, 2);
  deepEqual(gemms.map((n) => [n.attrs.transA?.value ?? 0, n.attrs.transB?.value ?? 0]), [
    [0, 1],
    [1, 0],
  ]);
  ok(!backward.some((n) => n.op === "Transpose" || n.op === "MatMul"));
});

Deno.test("the backward graph of a transformer-style block stays on the WebGPU EP", () => {
  const b = new GraphBuilder("block");
  const x = b.input("x", "float32", ["batch", "time", 8]);
  const ids = b.input("ids", "int32", ["batch", "time"]);
  const emb = b.input("emb", "float32", [11, 8]);
  const wq = b.input("wq", "float32", [8, 8]);
  const h = b.add(x, b.gather(emb, ids));
  const ms = b.reduceMean(b.mul(h, h), [-1]);
  const n = b.div(h, b.sqrt(b.add(ms, b.scalar(1e-5))));
  const q = b.matmul(n, wq);
  const att = b.softmax(b.matmul(q, b.transpose(n, [0, 2, 1])));
  const logits = b.matmul(b.matmul(att, n), b.transpose(emb, [1, 0]));
  const logp = b.logSoftmax(logits);
  const picked = b.gatherElements(logp, b.unsqueeze(ids, [-1]), 2);
  b.output(b.neg(b.reduceMean(picked, [0, 1, 2], false)), "loss");
  const fwd = b.build();
  const g = grad(fwd, "loss", ["x", "emb", "wq"]);
  deepEqual(webgpuHazards(g.nodes.slice(fwd.nodes.length)), []);
});

Deno.test("grad() output is deterministic: same graph bytes, identical gradient bytes", async () => {
  const bytes1 = serializeModel(grad(mlp("float32"), "loss", ["w1", "b1", "w2"]));
  const bytes2 = serializeModel(grad(mlp("float32"), "loss", ["w1", "b1", "w2"]));
  deepEqual(bytes1, bytes2);
  const rng = new Rng(7);
  const feeds: Feeds = {};
  for (
    const [name, shape] of [["x", [16, 3]], ["t", [16, 1]], ["w1", [3, 4]], ["b1", [4]], [
      "w2",
      [4, 1],
    ]] as [string, number[]][]
  ) {
    feeds[name] = tensorOf("float32", shape, drawValues(rng, { shape }));
  }
  const runs: Uint8Array[][] = [];
  for (let i = 0; i < 2; i++) {
    const s = await ort.InferenceSession.create(bytes1, { intraOpNumThreads: 2 });
    const out = await s.run(feeds);
    runs.push(["loss", "grad.w1", "grad.b1", "grad.w2"].map((k) => {
      const d = out[k].data as Float32Array;
      return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    }));
    await s.release();
  }
  deepEqual(runs[0], runs[1]);
});

Deno.test("gradInto() accepts the seed as a value or inside options", () => {
  const b = new GraphBuilder("seeded");
  const x = b.input("x", "float32", [2]);
  const y = b.mul(x, x);
  const seed = b.input("seed", "float32", [2]);
  const [g1] = gradInto(b, y, [x], seed);
  const [g2] = gradInto(b, y, [x], { seed });
  ok((g1 as Value).shape.length === 1 && (g2 as Value).shape.length === 1);
  match(g1.name, /./);
});
