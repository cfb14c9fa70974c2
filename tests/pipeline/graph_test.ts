/** buildGraph(): fan-out, upstream matching, ordering, keys, and errors in stage declarations. */

import assert from "node:assert/strict";
import { loadConfig } from "../../pipeline/config.ts";
import { buildGraph, nodeId, withAncestors } from "../../pipeline/graph.ts";
import { defineStage, type Stage, type StageOptions } from "../../pipeline/stage.ts";
import { ROOT } from "./_harness.ts";

const noop = () => Promise.resolve();
const stage = (options: Omit<StageOptions<Record<string, unknown>>, "module" | "run">): Stage =>
  defineStage({ ...options, module: import.meta.url, run: noop });

const data = stage({ name: "data", configKeys: ["data.seed"] });
const train = stage({
  name: "train",
  upstream: ["data"],
  configKeys: ["train.lr"],
  params: { method: "train.methods", seed: "runtime.seeds" },
});
const evaluate = stage({
  name: "evaluate",
  upstream: ["train"],
  params: { method: "train.methods", seed: "runtime.seeds" },
});
const perMethod = stage({
  name: "per_method",
  upstream: ["evaluate"],
  params: { method: "train.methods" },
});
const report = stage({ name: "report", upstream: ["per_method", "data"] });

async function graphOf(stages: Stage[], sets: string[] = []) {
  return await buildGraph(stages, await loadConfig({ sets }), { root: ROOT });
}

Deno.test("buildGraph() expands method × seed fan-out and joins downstream nodes on shared params", async () => {
  const graph = await graphOf([report, perMethod, evaluate, train, data]);
  assert.deepEqual(graph.stages.map((s) => s.name), [
    "data",
    "train",
    "evaluate",
    "per_method",
    "report",
  ]);
  assert.deepEqual(graph.nodes.filter((n) => n.stage.name === "train").map((n) => n.id), [
    "train[method=grpo,seed=1]",
    "train[method=grpo,seed=2]",
    "train[method=sent,seed=1]",
    "train[method=sent,seed=2]",
  ]);
  const upstreamIds = (id: string, stageName: string) =>
    graph.byId.get(id)!.upstream.get(stageName)!.map((n) => n.id);
  assert.deepEqual(upstreamIds("evaluate[method=sent,seed=2]", "train"), [
    "train[method=sent,seed=2]",
  ]);
  assert.deepEqual(upstreamIds("per_method[method=sent]", "evaluate"), [
    "evaluate[method=sent,seed=1]",
    "evaluate[method=sent,seed=2]",
  ]);
  assert.deepEqual(upstreamIds("report", "per_method"), [
    "per_method[method=grpo]",
    "per_method[method=sent]",
  ]);
  assert.equal(graph.nodes.length, 1 + 4 + 4 + 2 + 1);
  assert.deepEqual(
    withAncestors(graph, [graph.byId.get("per_method[method=grpo]")!]).map((n) => n.id),
    [
      "data",
      "train[method=grpo,seed=1]",
      "train[method=grpo,seed=2]",
      "evaluate[method=grpo,seed=1]",
      "evaluate[method=grpo,seed=2]",
      "per_method[method=grpo]",
    ],
  );
});

Deno.test("buildGraph() uses an upstream match rule when one is given", async () => {
  const baseline = stage({
    name: "baseline",
    upstream: [{ stage: "train", match: (_down, up) => up.method === "grpo" }],
    params: { seed: [1, 2] },
  });
  const graph = await graphOf([data, train, baseline]);
  assert.deepEqual(graph.byId.get("baseline[seed=1]")!.upstream.get("train")!.map((n) => n.id), [
    "train[method=grpo,seed=1]",
    "train[method=grpo,seed=2]",
  ]);
});

Deno.test("buildGraph() keys change only for nodes that read a changed key, and their descendants", async () => {
  const before = await graphOf([data, train, evaluate]);
  const after = await graphOf([data, train, evaluate], ["train.lr=0.5", "evaluate.samples=3"]);
  for (const node of before.nodes) {
    const changed = after.byId.get(node.id)!.key !== node.key;
    assert.equal(changed, node.stage.name !== "data", node.id);
  }
  const seeds = await graphOf([data, train, evaluate], ["runtime.seeds=1,2,3"]);
  for (const node of before.nodes) assert.equal(seeds.byId.get(node.id)!.key, node.key, node.id);
  assert.equal(seeds.nodes.length, 1 + 6 + 6);
  // The device enters the keys of stages that run ONNX Runtime only.
  const onnx = stage({ name: "onnx", engine: true, configKeys: ["data.seed"] });
  const cpu = await graphOf([data, onnx]);
  const device = await graphOf([data, onnx], ["runtime.device=webgpu"]);
  assert.equal(device.byId.get("data")!.key, cpu.byId.get("data")!.key);
  assert.equal(device.byId.get("data")!.inputs.engine.device, undefined);
  assert.notEqual(device.byId.get("onnx")!.key, cpu.byId.get("onnx")!.key);
  assert.equal(device.byId.get("onnx")!.inputs.engine.device, "webgpu");
});

Deno.test("buildGraph() rejects duplicate names, unknown upstreams, cycles and unknown config keys", async () => {
  await assert.rejects(graphOf([data, data]), /stage "data" is registered twice/);
  await assert.rejects(
    graphOf([train]),
    /stage "train" has upstream "data", which is not registered \(registered: train\)/,
  );
  const a = stage({ name: "a", upstream: ["b"] });
  const b = stage({ name: "b", upstream: ["a"] });
  await assert.rejects(graphOf([a, b]), /stages form a cycle: a → b → a/);
  const typo = stage({ name: "typo", configKeys: ["train.lrr"] });
  await assert.rejects(
    graphOf([typo]),
    /stage "typo" reads config key "train\.lrr", which is not in the schema/,
  );
  const fan = stage({ name: "fan", params: { x: "train.nope" } });
  await assert.rejects(
    graphOf([fan]),
    /stage "fan" fans out "x" over config key "train\.nope", which is not set/,
  );
});

Deno.test("defineStage() validates names and slices, and nodeId() writes params in order", () => {
  assert.throws(() => stage({ name: "Train" }), /name must match/);
  assert.throws(
    () => defineStage({ name: "x", module: "https://example.com/x.ts", run: noop }),
    /expected import\.meta\.url of a local file/,
  );
  assert.throws(
    () =>
      defineStage({
        name: "x",
        module: import.meta.url,
        configKeys: [],
        configSlice: () => ({}),
        run: noop,
      }),
    /give configKeys or configSlice, not both/,
  );
  assert.equal(nodeId("train", { method: "sent", seed: 1 }), "train[method=sent,seed=1]");
  assert.equal(nodeId("data", {}), "data");
});
