import assert from "node:assert/strict";
import { grad } from "../../kernels/autodiff.ts";
import type { Graph } from "../../kernels/ir.ts";
import {
  compile,
  type Device,
  DeviceTensor,
  HostTensor,
  hostTensor,
} from "../../kernels/session.ts";
import { initWeights, padBatch, Policy } from "../../kernels/policy.ts";
import { buildTrainStep, Trainer } from "../../kernels/train_step.ts";
import { buildLossGraph, nextTokenLoss, parameterShapes } from "../../kernels/transformer.ts";
import {
  attentionBlockModel,
  initToyParams,
  mlpModel,
  normalStream,
  randomNormal,
  TINY_QWEN2,
  type ToyModel,
} from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

// Small shapes: on CI the WebGPU EP runs on SwiftShader, a software rasteriser on 2 cores.
const MLP = mlpModel({ rows: 16, inputs: 5, hidden: 12, outputs: 2, layers: 2 });
const BLOCK = attentionBlockModel({ batch: 2, seq: 8, width: 16, heads: 2, hidden: 24 });

/** Parameters and data of a toy model, seeded. */
function feedsFor(model: ToyModel, seed: number): Record<string, HostTensor> {
  const init = initToyParams(model.params, seed);
  const feeds: Record<string, HostTensor> = {};
  for (const p of model.params) {
    // Perturb the norm gains so their gradients are not a special case.
    const data = p.init === "ones"
      ? init.get(p.name)!.map((v, i) => v + 0.1 * Math.sin(i))
      : init.get(p.name)!;
    feeds[p.name] = hostTensor("float32", p.shape, data);
  }
  const next = normalStream(seed + 1);
  for (const d of model.data) {
    feeds[d.name] = hostTensor("float32", d.shape, randomNormal(d.shape, next));
  }
  return feeds;
}

async function forwardBackward(graph: Graph, device: Device, feeds: Record<string, HostTensor>) {
  const program = await compile(graph, { device, threads: 2 });
  const out = await program.run(feeds);
  await program.release();
  return out;
}

async function assertGradientsAgree(model: ToyModel, tolerance: { atol: number; rtol: number }) {
  const graph = grad(model.graph, "loss", model.params.map((p) => p.name));
  const feeds = feedsFor(model, 5);
  const cpu = await forwardBackward(graph, "cpu", feeds);
  const gpu = await forwardBackward(graph, "webgpu", feeds);
  assertAllClose([gpu.scalar("loss")], [cpu.scalar("loss")], `${model.graph.name} loss`, tolerance);
  for (const p of model.params) {
    const name = `grad.${p.name}`;
    assertAllClose(
      gpu.host(name).float32(),
      cpu.host(name).float32(),
      `${model.graph.name} ${name}`,
      tolerance,
    );
  }
}

Deno.test("an MLP's forward and backward on webgpu agree with the CPU EP (atol 1e-5, rtol 1e-3)", async () => {
  await assertGradientsAgree(MLP, { atol: 1e-5, rtol: 1e-3 });
});

Deno.test("an attention block's forward and backward on webgpu agree with the CPU EP (atol 1e-5, rtol 1e-3)", async () => {
  await assertGradientsAgree(BLOCK, { atol: 1e-5, rtol: 1e-3 });
});

Deno.test("Trainer on webgpu keeps the state on the GPU and matches the CPU for four steps", async () => {
  const step = buildTrainStep(MLP.graph, {
    params: MLP.params.map((p) => ({ name: p.name, decay: p.decay })),
  });
  const feeds = feedsFor(MLP, 8);
  const params = Object.fromEntries(MLP.params.map((p) => [p.name, feeds[p.name]]));
  const data = { x: feeds.x, y: feeds.y };
  const run = async (device: Device) => {
    const trainer = await Trainer.create(step, params, { device, threads: 2 });
    const losses: number[] = [];
    let previous: DeviceTensor[] = [];
    for (let i = 0; i < 4; i++) {
      losses.push((await trainer.step(data, { lr: 0.01 })).loss);
      if (device === "webgpu") {
        // Every parameter and moment is a device tensor; the ones they replaced were freed.
        const now = [...trainer.stateTensors.values()];
        assert.ok(now.every((t) => t instanceof DeviceTensor), "state resident after each step");
        assert.ok(previous.every((t) => t.disposed), "replaced state disposed");
        previous = now as DeviceTensor[];
      }
    }
    assert.equal(trainer.resident, device === "webgpu");
    const state = await trainer.state();
    await trainer.release();
    return { losses, state };
  };
  const gpu = await run("webgpu");
  const cpu = await run("cpu");
  const tolerance = { atol: 1e-5, rtol: 1e-3 };
  assertAllClose(gpu.losses, cpu.losses, "losses", tolerance);
  for (const [name, t] of cpu.state) {
    assertAllClose(gpu.state.get(name)!.float32(), t.float32(), `${name} after 4 steps`, tolerance);
  }
});

Deno.test("a Qwen2 policy's scores and SFT gradients on webgpu agree with the CPU EP (atol 1e-4, rtol 1e-3)", async () => {
  const config = TINY_QWEN2;
  const weights = initWeights(config, { seed: 3, std: 0.2 });
  const batch = padBatch([[1, 4, 9, 3, 7, 31], [1, 5], [1, 8, 6, 3]], { padId: 0 });
  const tolerance = { atol: 1e-4, rtol: 1e-3 };

  const score = async (device: Device) => {
    const policy = Policy.create(config, weights, { device, threads: 2 });
    const out = await policy.score(batch, { temperature: 0.7 });
    await policy.release();
    return out;
  };
  const [gpuScore, cpuScore] = [await score("webgpu"), await score("cpu")];
  assertAllClose(gpuScore.logprobs, cpuScore.logprobs, "log-probs", tolerance);
  assertAllClose(gpuScore.entropy, cpuScore.entropy, "entropies", tolerance);

  const names = [...parameterShapes(config).keys()];
  const graph = grad(buildLossGraph(config, nextTokenLoss), "loss", names);
  const dims = [batch.batch, batch.length];
  const feeds: Record<string, HostTensor> = {
    input_ids: new HostTensor("int32", dims, batch.ids),
    attention_mask: new HostTensor("int32", dims, batch.mask),
    position_ids: new HostTensor("int32", dims, batch.positions),
    loss_mask: new HostTensor("float32", dims, Float32Array.from(batch.mask)),
  };
  for (const [name, shape] of parameterShapes(config)) {
    feeds[name] = new HostTensor("float32", shape, weights.get(name)!);
  }
  const gpu = await forwardBackward(graph, "webgpu", feeds);
  const cpu = await forwardBackward(graph, "cpu", feeds);
  assertAllClose([gpu.scalar("loss")], [cpu.scalar("loss")], "loss", tolerance);
  for (const name of names) {
    const g = `grad.${name}`;
    assertAllClose(gpu.host(g).float32(), cpu.host(g).float32(), g, tolerance);
  }
});
