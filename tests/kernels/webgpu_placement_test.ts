import assert from "node:assert/strict";
import { adamwGraph } from "../../kernels/adamw.ts";
import { grad } from "../../kernels/autodiff.ts";
import { GraphBuilder } from "../../kernels/builder.ts";
import { chosenLogProb, klK3, tokenEntropy } from "../../kernels/fused.ts";
import type { Graph } from "../../kernels/ir.ts";
import { assertAllOnWebGpu, checkPlacement, parsePlacementLog } from "../../kernels/placement.ts";
import { buildScoreGraph, policyTrainStep } from "../../kernels/policy.ts";
import { buildTrainStep } from "../../kernels/train_step.ts";
import { buildDecoderGraph, nextTokenLoss } from "../../kernels/transformer.ts";
import {
  attentionBlockModel,
  mlpModel,
  TINY_QWEN2,
  type ToyModel,
} from "../../kernels/_toy_models.ts";

/** Forward and backward of the three per-token fused graphs, as a policy loss would use them. */
function fusedLossGraph(): Graph {
  const b = new GraphBuilder("fused_loss");
  const logits = b.input("logits", "float32", ["B", "T", 50]); //     [B,T,V]
  const tokens = b.input("tokens", "int64", ["B", "T", 1]); //       [B,T,1]
  const ref = b.input("ref_logp", "float32", ["B", "T"]); //         [B,T]
  const logp = chosenLogProb(b, logits, tokens, { temperature: 0.7 });
  const entropy = tokenEntropy(b, logits, { temperature: 0.7 });
  const kl = klK3(b, logp, ref);
  const perToken = b.add(b.sub(kl, logp), b.mul(entropy, b.scalar(-0.01)));
  b.output(b.reduceMean(perToken, [0, 1], false), "loss");
  return grad(b.build(), "loss", ["logits"]);
}

function trainStepGraph(model: ToyModel): Graph {
  return buildTrainStep(model.graph, {
    params: model.params.map((p) => ({ name: p.name, decay: p.decay })),
  }).graph;
}

const GENERATED: Record<string, () => Graph> = {
  "fused entropy / log-prob / k3, forward and backward": fusedLossGraph,
  "AdamW update over several parameters": () =>
    adamwGraph([{ name: "w", shape: [8, 4] }, { name: "b", shape: [4], decay: false }]).graph,
  "MLP train step": () => trainStepGraph(mlpModel({ rows: 8, inputs: 4, hidden: 8, outputs: 1 })),
  "attention block train step": () =>
    trainStepGraph(attentionBlockModel({ batch: 2, seq: 8, width: 16, heads: 2, hidden: 24 })),
  "Qwen2 prefill (no cache, last logits)": () =>
    buildDecoderGraph(TINY_QWEN2, { cache: "none", logits: "last" }),
  "Qwen2 forward (no cache, all logits)": () =>
    buildDecoderGraph(TINY_QWEN2, { cache: "none", logits: "all" }),
  "Qwen2 decode with past → present (concat)": () =>
    buildDecoderGraph(TINY_QWEN2, { cache: "concat", logits: "last" }),
  "Qwen2 decode against host cache slots": () =>
    buildDecoderGraph(TINY_QWEN2, { cache: "slots", logits: "last" }),
  "Qwen2 score graph (next-token log-probs and entropies)": () => buildScoreGraph(TINY_QWEN2),
  "Qwen2 score graph with its attention in 4 query blocks": () =>
    buildScoreGraph(TINY_QWEN2, { queryBlocks: 4 }),
  "Qwen2 SFT train step (forward, backward, AdamW)": () =>
    policyTrainStep(TINY_QWEN2, nextTokenLoss).graph,
};

for (const [what, build] of Object.entries(GENERATED)) {
  Deno.test(`assertAllOnWebGpu() finds no CPU node in the ${what}`, async () => {
    await assertAllOnWebGpu(build());
  });
}

Deno.test("checkPlacement() reports the nodes that fall back to the CPU EP", async () => {
  const b = new GraphBuilder("fallbacks");
  const x = b.input("x", "float32", [2, 3]);
  const i = b.input("i", "int64", [2, 3]);
  const y = b.op1("LogSoftmax", [b.exp(x)], { axis: -1 }); //       LogSoftmax → CPU
  b.output(b.add(y, b.cast(b.add(i, i), "float32")), "y"); //        int64 Add, Cast → CPU
  const report = await checkPlacement(b.build());
  assert.deepEqual(report.cpuNodes.map((n) => n.op).sort(), ["Add", "Cast", "LogSoftmax"]);
  assert.deepEqual(report.cpuNodes.find((n) => n.op === "Add")!.outputs, ["add: int64[2,3]"]);
  await assert.rejects(
    () => assertAllOnWebGpu(b.build()),
    /graph fallbacks: 3 node\(s\) fall back to the CPU EP under webgpu:\n {2}LogSoftmax \(LogSoftmax_1\)/,
  );
});

Deno.test("parsePlacementLog() reads both forms of ORT's placement dump", () => {
  const prefix =
    "2026-01-01 00:00:00.0 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp]";
  const split = [
    `${prefix} Node placements`,
    `${prefix}  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1`,
    `${prefix}   LogSoftmax (LogSoftmax_1)`,
    `${prefix}  Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 1`,
    `${prefix}   Exp (Exp_0)`,
    "2026-01-01 00:00:00.1 [V:onnxruntime:, session_state.cc:186 CreateGraphInfo] Saving",
  ].join("\n");
  assert.deepEqual(parsePlacementLog(split), {
    allOn: undefined,
    nodes: [
      { provider: "CPUExecutionProvider", op: "LogSoftmax", node: "LogSoftmax_1" },
      { provider: "WebGpuExecutionProvider", op: "Exp", node: "Exp_0" },
    ],
  });
  const all = `${prefix}  All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 4`;
  assert.deepEqual(parsePlacementLog(all), { allOn: "WebGpuExecutionProvider", nodes: [] });
});
