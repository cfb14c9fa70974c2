import assert from "node:assert/strict";
import { assertAllOnWebGpu } from "../../kernels/placement.ts";
import { decays } from "../../kernels/policy.ts";
import { type Device, DeviceTensor, HostTensor, hostTensor } from "../../kernels/session.ts";
import {
  buildTrainStep,
  splitRows,
  Trainer,
  type TrainStep,
  withMicroWeight,
} from "../../kernels/train_step.ts";
import { buildLossGraph, nextTokenLoss, parameterShapes } from "../../kernels/transformer.ts";
import {
  initToyParams,
  mlpModel,
  normalStream,
  randomNormal,
  TINY_QWEN2,
  type ToyModel,
} from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

const SIZES = { inputs: 5, hidden: 12, outputs: 2, layers: 2 };

/** The MLP regressor at a row count: the full batch and its micro-batches share parameters. */
function mlpStep(rows: number, metrics: string[] = []): { model: ToyModel; step: TrainStep } {
  const model = mlpModel({ rows, ...SIZES });
  const graph = withMicroWeight(model.graph);
  const params = model.params.map((p) => ({ name: p.name, decay: p.decay }));
  return { model, step: buildTrainStep(graph, { params, metrics, maxGradNorm: 0.5 }) };
}

function mlpParams(model: ToyModel): Record<string, HostTensor> {
  const init = initToyParams(model.params, 11);
  return Object.fromEntries(
    model.params.map((p) => [p.name, hostTensor("float32", p.shape, init.get(p.name)!)]),
  );
}

function mlpData(rows: number, seed: number): Record<string, HostTensor> {
  const next = normalStream(seed);
  return {
    x: hostTensor("float32", [rows, SIZES.inputs], randomNormal([rows, SIZES.inputs], next)),
    y: hostTensor("float32", [rows, SIZES.outputs], randomNormal([rows, SIZES.outputs], next)),
  };
}

const weight = (w: number) => hostTensor("float32", [], [w]);

/** K micro-batches of a batch, each with micro_weight = 1/K. */
function microBatches(data: Record<string, HostTensor>, k: number) {
  return splitRows(data, k).map((d) => ({ ...d, micro_weight: weight(1 / k) }));
}

async function assertStatesClose(
  a: Trainer,
  b: Trainer,
  what: string,
  tolerance = { atol: 1e-7, rtol: 1e-5 },
) {
  const [sa, sb] = [await a.state(), await b.state()];
  assert.deepEqual([...sa.keys()], [...sb.keys()]);
  for (const [name, t] of sb) {
    assertAllClose(sa.get(name)!.float32(), t.float32(), `${what}: ${name}`, tolerance);
  }
}

Deno.test("accumulating 4 micro-batches of an MLP (each loss ÷ 4) takes the full batch's three updates (rtol 1e-5)", async () => {
  const full = mlpStep(16);
  const micro = mlpStep(4);
  const params = mlpParams(full.model);
  const fused = await Trainer.create(full.step, params, { threads: 2 });
  const split = await Trainer.create(micro.step, params, {
    threads: 2,
    compile: ["accumulate", "apply", "zeros"],
  });
  for (let update = 0; update < 3; update++) {
    const data = mlpData(16, 40 + update);
    const whole = await fused.step({ ...data, micro_weight: weight(1) }, { lr: 0.02 });
    let loss = 0;
    for (const part of microBatches(data, 4)) loss += (await split.accumulate(part)).loss;
    assert.equal(split.pendingMicroBatches, 4);
    const applied = await split.apply({ lr: 0.02 });
    assert.deepEqual([applied.applied, applied.microBatches], [true, 4]);
    assert.equal(split.pendingMicroBatches, 0);
    // The micro-batch losses (each ÷ 4) sum to the full batch's mean loss.
    assertAllClose([loss], [whole.loss], `loss of update ${update}`, { atol: 0, rtol: 1e-6 });
    // Clipping (max norm 0.5) sees the same global norm.
    assertAllClose([applied.gradNorm], [whole.gradNorm], `norm of update ${update}`, {
      atol: 0,
      rtol: 1e-5,
    });
    assert.ok(whole.gradNorm > 0.5, `clipping is active (norm ${whole.gradNorm})`);
  }
  assert.deepEqual([split.updates, fused.updates], [3, 3]);
  await assertStatesClose(split, fused, "after 3 updates");
  await fused.release();
  await split.release();
});

Deno.test("one micro-batch of weight 1 through accumulate() and apply() takes the fused step's update, bit for bit", async () => {
  // 0 + g = g exactly, and both paths run the same forward, backward and AdamW kernels.
  const { model, step } = mlpStep(8);
  const params = mlpParams(model);
  const fused = await Trainer.create(step, params, { threads: 2 });
  const split = await Trainer.create(step, params, { threads: 2, compile: [] });
  for (let update = 0; update < 3; update++) {
    const data = { ...mlpData(8, 60 + update), micro_weight: weight(1) };
    const a = await fused.step(data, { lr: 0.05 });
    const b = await split.accumulate(data);
    const c = await split.apply({ lr: 0.05 });
    assert.deepEqual([b.loss, c.gradNorm, c.applied], [a.loss, a.gradNorm, a.applied]);
  }
  const [a, b] = [await fused.state(), await split.state()];
  for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, name);
  await fused.release();
  await split.release();
});

Deno.test("accumulating 2 micro-batches of a tiny Qwen2 with equal token counts takes the full batch's two updates (rtol 1e-5)", async () => {
  const config = TINY_QWEN2;
  const graph = withMicroWeight(buildLossGraph(config, nextTokenLoss));
  const params = [...parameterShapes(config).keys()].map((name) => ({ name, decay: decays(name) }));
  const step = buildTrainStep(graph, { params });
  const next = normalStream(5);
  const init: Record<string, HostTensor> = {};
  for (const [name, shape] of parameterShapes(config)) {
    const data = name.endsWith("norm.weight")
      ? new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(1)
      : randomNormal(shape, next, 0.2);
    init[name] = hostTensor("float32", shape, data);
  }
  // 4 unpadded rows of 7 tokens: every micro-batch of 2 rows predicts 2 × 6 tokens.
  const [rows, length] = [4, 7];
  const batch = (seed: number) => {
    const ids = Int32Array.from({ length: rows * length }, (_, i) => 1 + ((i * 13 + seed) % 31));
    const dims = [rows, length];
    return {
      input_ids: new HostTensor("int32", dims, ids),
      attention_mask: new HostTensor("int32", dims, new Int32Array(rows * length).fill(1)),
      position_ids: new HostTensor(
        "int32",
        dims,
        Int32Array.from({ length: rows * length }, (_, i) => i % length),
      ),
      loss_mask: new HostTensor("float32", dims, new Float32Array(rows * length).fill(1)),
    };
  };
  const fused = await Trainer.create(step, init, { threads: 2 });
  const split = await Trainer.create(step, init, { threads: 2, compile: [] });
  for (let update = 0; update < 2; update++) {
    const data = batch(update * 7);
    const whole = await fused.step({ ...data, micro_weight: weight(1) }, { lr: 1e-2 });
    let loss = 0;
    for (const part of microBatches(data, 2)) loss += (await split.accumulate(part)).loss;
    const applied = await split.apply({ lr: 1e-2 });
    assertAllClose([loss], [whole.loss], `loss of update ${update}`, { atol: 0, rtol: 1e-6 });
    assertAllClose([applied.gradNorm], [whole.gradNorm], `norm of update ${update}`, {
      atol: 0,
      rtol: 1e-5,
    });
  }
  await assertStatesClose(split, fused, "tiny Qwen2 after 2 updates");
  await fused.release();
  await split.release();
});

Deno.test("accumulate() returns the loss graph's extra metrics by output name", async () => {
  const { model, step } = mlpStep(4, ["pred"]);
  assert.deepEqual(step.accumulation.metrics, ["loss", "pred"]);
  const trainer = await Trainer.create(step, mlpParams(model), { threads: 2, compile: [] });
  const data = { ...mlpData(4, 3), micro_weight: weight(0.5) };
  const out = await trainer.accumulate(data);
  assert.deepEqual(Object.keys(out.values), ["loss", "pred"]);
  assert.equal(out.values.loss, out.loss);
  assert.ok(Number.isFinite(out.values.pred));
  await trainer.release();
});

Deno.test("apply() skips a non-finite accumulated gradient, clears the accumulators, and the next mini-batch starts from zero", async () => {
  const { model, step } = mlpStep(4);
  const params = mlpParams(model);
  const trainer = await Trainer.create(step, params, { threads: 2, compile: [] });
  const clean = await Trainer.create(step, params, { threads: 2, compile: [] });
  const before = await trainer.state();
  const bad = mlpData(4, 9);
  bad.y.float32()[3] = NaN;
  await trainer.accumulate({ ...mlpData(4, 8), micro_weight: weight(0.5) });
  await trainer.accumulate({ ...bad, micro_weight: weight(0.5) });
  const skipped = await trainer.apply({ lr: 0.1 });
  assert.equal(skipped.applied, false);
  assert.ok(Number.isNaN(skipped.gradNorm));
  assert.deepEqual([trainer.updates, trainer.pendingMicroBatches], [0, 0]);
  assert.equal(trainer.accumulatorTensors.size, 0);
  const after = await trainer.state();
  for (const [name, t] of before) assert.deepEqual(after.get(name)!.data, t.data, name);
  // The next mini-batch sees none of the NaN: the same bytes as a trainer that never saw it.
  for (const t of [trainer, clean]) {
    await t.accumulate({ ...mlpData(4, 10), micro_weight: weight(1) });
    assert.equal((await t.apply({ lr: 0.1 })).applied, true);
  }
  const [a, b] = [await trainer.state(), await clean.state()];
  for (const [name, t] of b) assert.deepEqual(a.get(name)!.data, t.data, name);
  await trainer.release();
  await clean.release();
});

Deno.test("step() refuses while micro-batches are pending, and apply() refuses with none", async () => {
  const { model, step } = mlpStep(4);
  const trainer = await Trainer.create(step, mlpParams(model), { threads: 2, compile: [] });
  await assert.rejects(
    () => trainer.apply({ lr: 0.1 }),
    /Trainer.apply\(mlp_train_step\): no micro-batch accumulated since the last update/,
  );
  const data = { ...mlpData(4, 1), micro_weight: weight(1) };
  await trainer.accumulate(data);
  await assert.rejects(
    () => trainer.step(data, { lr: 0.1 }),
    /Trainer.step\(mlp_train_step\): 1 micro-batches are accumulated but not applied/,
  );
  await trainer.release();
});

Deno.test("withMicroWeight() multiplies the loss by micro_weight and keeps the other outputs", () => {
  const { graph } = mlpModel({ rows: 2, ...SIZES });
  const weighted = withMicroWeight(graph);
  assert.deepEqual(weighted.outputs.map((v) => v.name), ["loss", "pred"]);
  assert.ok(weighted.inputs.some((v) => v.name === "micro_weight" && v.shape.length === 0));
  assert.throws(() => withMicroWeight(graph, { loss: "mse" }), /no output mse; outputs are/);
});

Deno.test("splitRows() cuts every batched input into equal zero-copy views and shares scalars", () => {
  const data = {
    x: hostTensor("float32", [4, 2], [0, 1, 2, 3, 4, 5, 6, 7]),
    ids: new HostTensor("int32", [4], Int32Array.of(9, 8, 7, 6)),
    micro_weight: weight(0.5),
  };
  const parts = splitRows(data, 2);
  assert.deepEqual(parts[1].x.toNumbers(), [4, 5, 6, 7]);
  assert.deepEqual(parts[1].x.dims, [2, 2]);
  assert.deepEqual(parts[0].ids.toNumbers(), [9, 8]);
  assert.equal(parts[1].x.data.buffer, data.x.data.buffer);
  assert.equal(parts[0].micro_weight, data.micro_weight);
  assert.throws(() => splitRows(data, 3), /cannot split 4 rows into 3 equal micro-batches/);
  assert.throws(
    () => splitRows({ ...data, y: hostTensor("float32", [3], [1, 2, 3]) }, 2),
    /y has 3 rows but x has 4/,
  );
});

Deno.test("accumulation on webgpu keeps the accumulators on the GPU, frees them on apply, and matches the CPU", async () => {
  const { model, step } = mlpStep(4);
  const params = mlpParams(model);
  const data = mlpData(8, 21);
  const run = async (device: Device) => {
    const trainer = await Trainer.create(step, params, { device, threads: 2, compile: [] });
    const seen: DeviceTensor[] = [];
    for (let update = 0; update < 2; update++) {
      for (const part of microBatches(data, 2)) {
        await trainer.accumulate(part);
        if (device === "webgpu") {
          const acc = [...trainer.accumulatorTensors.values()];
          assert.ok(acc.every((t) => t instanceof DeviceTensor), "accumulators resident");
          seen.push(...(acc as DeviceTensor[]));
        }
      }
      await trainer.apply({ lr: 0.05 });
    }
    // Every accumulator was disposed once replaced or applied.
    assert.ok(seen.every((t) => t.disposed), "accumulators disposed");
    assert.equal(trainer.resident, device === "webgpu");
    const state = await trainer.state();
    await trainer.release();
    return state;
  };
  const [gpu, cpu] = [await run("webgpu"), await run("cpu")];
  for (const [name, t] of cpu) {
    assertAllClose(gpu.get(name)!.float32(), t.float32(), name, { atol: 1e-5, rtol: 1e-3 });
  }
});

Deno.test("the accumulate, apply and zeros graphs of a Qwen2 SFT step place every node on webgpu", async () => {
  const graph = withMicroWeight(buildLossGraph(TINY_QWEN2, nextTokenLoss));
  const params = [...parameterShapes(TINY_QWEN2).keys()].map((name) => ({
    name,
    decay: decays(name),
  }));
  const { accumulate, apply, zeros } = buildTrainStep(graph, { params }).accumulation;
  for (const g of [accumulate, apply, zeros]) await assertAllOnWebGpu(g);
});
