import assert from "node:assert/strict";
import { GraphBuilder } from "../../kernels/builder.ts";
import { hostTensor } from "../../kernels/session.ts";
import { buildTrainStep, Trainer } from "../../kernels/train_step.ts";

/** loss = Σ (w·x − y)², with a second output that is not a metric. */
function fitGraph() {
  const b = new GraphBuilder("fit");
  const w = b.input("w", "float32", [2]);
  const bias = b.input("bias", "float32", [1]);
  const x = b.input("x", "float32", [2]);
  const y = b.input("y", "float32", [2]);
  const pred = b.add(b.mul(w, x), bias);
  const err = b.sub(pred, y);
  b.output(b.reduceSum(b.mul(err, err), [0], false), "loss");
  b.output(pred, "pred");
  return b.build();
}

Deno.test("buildTrainStep() names the state pairs, data inputs and metrics", () => {
  const step = buildTrainStep(fitGraph(), { params: ["w", { name: "bias", decay: false }] });
  assert.deepEqual(step.params, ["w", "bias"]);
  assert.deepEqual(step.data, ["x", "y"]);
  assert.deepEqual(step.metrics, ["loss", "grad_norm", "update_applied"]);
  assert.deepEqual(step.state.map((s) => s.input), [
    "w",
    "adam.m.w",
    "adam.v.w",
    "bias",
    "adam.m.bias",
    "adam.v.bias",
  ]);
  assert.ok(step.state.every((s) => s.output === `${s.input}.next`));
  // Forward outputs that are not metrics are dropped: they would be copied out every step.
  assert.ok(!step.graph.outputs.some((v) => v.name === "pred"));
  assert.equal(step.graph.name, "fit_train_step");
});

Deno.test("buildTrainStep() also builds the accumulate, apply and zeros graphs with the fused step's names", () => {
  const step = buildTrainStep(fitGraph(), { params: ["w", { name: "bias", decay: false }] });
  const { accumulate, apply, zeros, accumulators, metrics } = step.accumulation;
  assert.deepEqual(accumulators, [
    { input: "acc.w", output: "acc.w.next" },
    { input: "acc.bias", output: "acc.bias.next" },
  ]);
  assert.deepEqual(metrics, ["loss"]);
  const names = (vs: readonly { name: string }[]) => vs.map((v) => v.name);
  assert.deepEqual(names(accumulate.inputs), ["w", "bias", "x", "y", "acc.w", "acc.bias"]);
  assert.deepEqual(names(accumulate.outputs), ["loss", "acc.w.next", "acc.bias.next"]);
  // The apply graph reads and writes the fused step's state, with the accumulators as gradients.
  const applyInputs = new Set(names(apply.inputs));
  for (const s of step.state) assert.ok(applyInputs.has(s.input), s.input);
  assert.ok(applyInputs.has("acc.w") && applyInputs.has("lr") && applyInputs.has("step"));
  assert.deepEqual(
    names(apply.outputs).sort(),
    [...step.state.map((s) => s.output), "grad_norm", "update_applied"].sort(),
  );
  assert.deepEqual(names(zeros.inputs), ["acc_fill"]);
  assert.deepEqual(names(zeros.outputs), ["acc.w", "acc.bias"]);
  assert.deepEqual(
    [accumulate.name, apply.name, zeros.name],
    ["fit_accumulate", "fit_apply", "fit_zeros"],
  );
});

Deno.test("buildTrainStep() keeps extra forward outputs listed as metrics", () => {
  const step = buildTrainStep(fitGraph(), { params: ["w"], metrics: ["pred"] });
  assert.deepEqual(step.metrics, ["loss", "grad_norm", "update_applied", "pred"]);
  assert.ok(step.graph.outputs.some((v) => v.name === "pred"));
});

Deno.test("buildTrainStep() names an unknown parameter, loss or metric", () => {
  assert.throws(
    () => buildTrainStep(fitGraph(), { params: ["v"] }),
    /buildTrainStep\(fit\): parameter v is not a graph input; inputs are w, bias, x, y/,
  );
  assert.throws(
    () => buildTrainStep(fitGraph(), { params: ["w"], loss: "mse" }),
    /buildTrainStep\(fit\): no output mse; outputs are loss, pred/,
  );
  assert.throws(
    () => buildTrainStep(fitGraph(), { params: ["w"], metrics: ["acc"] }),
    /metric acc is not an output of the loss graph/,
  );
});

Deno.test("Trainer.step() leaves the state and the step count alone when the gradient is NaN", async () => {
  const step = buildTrainStep(fitGraph(), { params: ["w", "bias"], weightDecay: 0 });
  const trainer = await Trainer.create(step, {
    w: hostTensor("float32", [2], [0.5, -0.5]),
    bias: hostTensor("float32", [1], [0]),
  });
  const x = hostTensor("float32", [2], [1, 2]);
  const good = await trainer.step({ x, y: hostTensor("float32", [2], [1, 1]) }, { lr: 0.1 });
  assert.equal(good.applied, true);
  assert.equal(trainer.updates, 1);
  const before = await trainer.state();
  const bad = await trainer.step({ x, y: hostTensor("float32", [2], [NaN, 1]) }, { lr: 0.1 });
  assert.equal(bad.applied, false);
  assert.ok(Number.isNaN(bad.gradNorm));
  assert.equal(trainer.updates, 1);
  const after = await trainer.state();
  for (const [name, t] of before) {
    assert.deepEqual(after.get(name)!.toNumbers(), t.toNumbers(), name);
  }
  await trainer.release();
});

Deno.test("Trainer.create() names a parameter without an initial value", async () => {
  const step = buildTrainStep(fitGraph(), { params: ["w", "bias"] });
  await assert.rejects(
    () => Trainer.create(step, { w: hostTensor("float32", [2], [0, 0]) }),
    /Trainer.create\(fit_train_step\): no initial value for bias/,
  );
});
