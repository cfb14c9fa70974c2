import assert from "node:assert/strict";
import {
  ADAMW_DEFAULTS,
  adamwGraph,
  type AdamWOptions,
  adamwReference,
  gradName,
  momentName,
  nextName,
} from "../../kernels/adamw.ts";
import { compile, type HostTensor, hostTensor, zerosTensor } from "../../kernels/session.ts";
import { buildTrainStep, Trainer } from "../../kernels/train_step.ts";
import { initToyParams, mlpModel, normalStream, randomNormal } from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

const SPECS = [
  { name: "w1", shape: [6, 4] },
  { name: "b1", shape: [4], decay: false },
  { name: "w2", shape: [4, 3] },
];

/** Run `steps` AdamW steps in the graph and in the reference; compare after each. */
async function compareWithReference(options: AdamWOptions, gradScale: number, steps: number) {
  const { graph } = adamwGraph(SPECS, options);
  const program = await compile(graph, { threads: 1 });
  const next = normalStream(3);
  const state = new Map<string, HostTensor>();
  const ref: { param: Float64Array; m: Float64Array; v: Float64Array }[] = SPECS.map((s) => {
    const p = hostTensor("float32", s.shape, randomNormal(s.shape, next));
    state.set(s.name, p);
    state.set(momentName(s.name, "m"), zerosTensor("float32", s.shape));
    state.set(momentName(s.name, "v"), zerosTensor("float32", s.shape));
    return {
      param: Float64Array.from(p.float32()),
      m: new Float64Array(p.size),
      v: new Float64Array(p.size),
    };
  });
  const lr = 0.01;
  for (let step = 1; step <= steps; step++) {
    const grads = SPECS.map((s) => randomNormal(s.shape, next, gradScale));
    const feeds: Record<string, HostTensor> = {
      lr: hostTensor("float32", [], [lr]),
      step: hostTensor("float32", [], [step]),
    };
    for (const [name, t] of state) feeds[name] = t;
    SPECS.forEach((s, i) => (feeds[gradName(s.name)] = hostTensor("float32", s.shape, grads[i])));
    const out = await program.run(feeds);
    const expected = adamwReference(
      SPECS.map((s, i) => ({ ...ref[i], grad: grads[i], decay: s.decay })),
      { ...options, lr, step },
    );
    assertAllClose([out.scalar("grad_norm")], [expected.gradNorm], `grad_norm at step ${step}`);
    assert.equal(out.scalar("update_applied"), 1);
    SPECS.forEach((s, i) => {
      const e = expected.params[i];
      const m = momentName(s.name, "m");
      const v = momentName(s.name, "v");
      const what = `${s.name} at step ${step}`;
      assertAllClose(out.host(nextName(s.name)).float32(), e.param, what, { atol: 2e-6 });
      assertAllClose(out.host(nextName(m)).float32(), e.m, `${what} (m)`, { atol: 1e-6 });
      assertAllClose(out.host(nextName(v)).float32(), e.v, `${what} (v)`, { atol: 1e-6 });
      state.set(s.name, out.host(nextName(s.name)));
      state.set(m, out.host(nextName(m)));
      state.set(v, out.host(nextName(v)));
      ref[i] = e;
    });
  }
  await program.release();
}

Deno.test("adamwGraph() matches the reference while clipping is inactive", async () => {
  await compareWithReference({ weightDecay: 0.1, maxGradNorm: 100 }, 0.1, 4);
});

Deno.test("adamwGraph() matches the reference when the global norm is clipped", async () => {
  // Gradients of scale 3 over 52 elements have a norm near 20: clipped to 1.
  await compareWithReference({ ...ADAMW_DEFAULTS, beta2: 0.99 }, 3, 4);
});

Deno.test("adamwGraph() without clipping or decay is plain Adam", async () => {
  await compareWithReference({ weightDecay: 0, maxGradNorm: Infinity }, 2, 3);
});

Deno.test("adamwGraph() skips the step when the gradient norm is not finite", async () => {
  const { graph, state } = adamwGraph([{ name: "w", shape: [3] }]);
  assert.deepEqual(state, [
    { input: "w", output: "w.next" },
    { input: "adam.m.w", output: "adam.m.w.next" },
    { input: "adam.v.w", output: "adam.v.w.next" },
  ]);
  const program = await compile(graph, { threads: 1 });
  for (const bad of [NaN, Infinity]) {
    const out = await program.run({
      w: hostTensor("float32", [3], [1, 2, 3]),
      "grad.w": hostTensor("float32", [3], [0.5, bad, 0.5]),
      "adam.m.w": hostTensor("float32", [3], [0.1, 0.1, 0.1]),
      "adam.v.w": hostTensor("float32", [3], [0.2, 0.2, 0.2]),
      lr: hostTensor("float32", [], [0.1]),
      step: hostTensor("float32", [], [5]),
    });
    assert.equal(out.scalar("update_applied"), 0, `grad with ${bad}`);
    assert.ok(!Number.isFinite(out.scalar("grad_norm")));
    assertAllClose(out.host("w.next").float32(), [1, 2, 3], `w after a ${bad} gradient`);
    assertAllClose(out.host("adam.m.w.next").float32(), [0.1, 0.1, 0.1], `m after ${bad}`);
    assertAllClose(out.host("adam.v.w.next").float32(), [0.2, 0.2, 0.2], `v after ${bad}`);
  }
  await program.release();
});

Deno.test("adamwReference() takes one bias-corrected step of size lr on the first step", () => {
  // With m = v = 0 and no clipping or decay, step 1 moves each weight by lr·sign(g) (up to ε).
  const out = adamwReference(
    [{ param: [1, 1], grad: [0.3, -0.02], m: [0, 0], v: [0, 0] }],
    { lr: 0.5, step: 1, weightDecay: 0, maxGradNorm: Infinity },
  );
  assertAllClose(out.params[0].param, [0.5, 1.5], "first Adam step", { atol: 1e-6 });
});

Deno.test("a tiny MLP trained with the AdamW step graph fits a regression task on the CPU", async () => {
  // y = sin(x₀) + ½·x₁·x₂ on 64 fixed points; 2×tanh(32) MLP, full-batch AdamW, lr 1e-2.
  const rows = 64;
  const model = mlpModel({ rows, inputs: 3, hidden: 32, outputs: 1, layers: 2 });
  const step = buildTrainStep(model.graph, {
    params: model.params.map((p) => ({ name: p.name, decay: p.decay })),
    weightDecay: 1e-4,
  });
  const init = initToyParams(model.params, 1);
  const params = Object.fromEntries(
    model.params.map((p) => [p.name, hostTensor("float32", p.shape, init.get(p.name)!)]),
  );
  const x = randomNormal([rows, 3], normalStream(2));
  const y = Float32Array.from(
    { length: rows },
    (_, i) => Math.sin(x[i * 3]) + 0.5 * x[i * 3 + 1] * x[i * 3 + 2],
  );
  const data = { x: hostTensor("float32", [rows, 3], x), y: hostTensor("float32", [rows, 1], y) };
  const train = async () => {
    const trainer = await Trainer.create(step, params, { device: "cpu", threads: 2 });
    const losses: number[] = [];
    for (let i = 0; i < 400; i++) losses.push((await trainer.step(data, { lr: 0.01 })).loss);
    assert.equal(trainer.updates, 400);
    await trainer.release();
    return losses;
  };
  const losses = await train();
  assert.ok(losses[0] > 0.3, `initial loss ${losses[0]}`);
  assert.ok(losses.at(-1)! < 2e-3, `final loss ${losses.at(-1)} (from ${losses[0]})`);
  // Same seed, same machine, same threads: the same losses, bit for bit.
  assert.deepEqual(await train(), losses);
});
