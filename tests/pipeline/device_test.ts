/**
 * The execution provider: checked once at start-up, before any stage runs, and part of the cache
 * key only of the stages that run ONNX Runtime.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../../pipeline/config.ts";
import { buildGraph } from "../../pipeline/graph.ts";
import { defineStage } from "../../pipeline/stage.ts";
import { makeTestDir } from "../_tmp.ts";
import { ROOT, sent, sentOk } from "./_harness.ts";

/** Whether ORT's CUDA provider libraries are installed here (then --device cuda may work). */
function cudaProviderInstalled(): boolean {
  const dir = `${ROOT}/node_modules/onnxruntime-node/bin/napi-v6/linux/x64`;
  try {
    return Deno.statSync(`${dir}/libonnxruntime_providers_cuda.so`).isFile;
  } catch {
    return false;
  }
}

const HAS_CUDA_PROVIDER = cudaProviderInstalled();

Deno.test(
  `--device cuda without ORT's CUDA provider fails at start-up, naming the install step, before any stage runs${
    HAS_CUDA_PROVIDER ? " (skipped: the CUDA provider is installed here)" : ""
  }`,
  { ignore: HAS_CUDA_PROVIDER },
  async () => {
    const dir = await makeTestDir("device-cuda");
    const result = await sent(["reproduce", "--store", `${dir}/store`, "--device", "cuda"]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /^sent reproduce: --device cuda: ONNX Runtime's CUDA execution provider is not available here \(.*libonnxruntime_providers_cuda\.so.*\); install ORT's CUDA provider with `deno install --allow-scripts=npm:onnxruntime-node`/,
    );
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    await assert.rejects(Deno.stat(`${dir}/runs`), Deno.errors.NotFound, "no run started");
    await assert.rejects(Deno.stat(`${dir}/store`), Deno.errors.NotFound, "no store written");
    // A dry run only plans: it does not need the device.
    await sentOk(["reproduce", "--store", `${dir}/store`, "--device", "cuda", "--dry-run"]);
  },
);

Deno.test("buildGraph() keys a stage by the device only when it runs ONNX Runtime", async () => {
  const plain = defineStage({
    name: "plain",
    module: import.meta.url,
    run: () => Promise.resolve(),
  });
  const onnx = defineStage({
    name: "onnx",
    module: import.meta.url,
    engine: true,
    upstream: ["plain"],
    run: () => Promise.resolve(),
  });
  const keys = async (device: string, dtype = "float32") => {
    const config = await loadConfig({ device });
    // Only float32 passes the config check today; set another dtype behind it to see the key.
    (config.values.runtime as Record<string, unknown>).dtype = dtype;
    const graph = await buildGraph([plain, onnx], config, { root: ROOT });
    return Object.fromEntries(graph.nodes.map((node) => [node.id, node.key]));
  };
  const cpu = await keys("cpu");
  const webgpu = await keys("webgpu");
  const half = await keys("cpu", "float16");
  assert.equal(webgpu.plain, cpu.plain);
  assert.equal(half.plain, cpu.plain);
  assert.notEqual(webgpu.onnx, cpu.onnx);
  assert.notEqual(half.onnx, cpu.onnx);
});

Deno.test("runtime.dtype float16 or bfloat16 is refused at config time in one line: only float32 compute is implemented", async () => {
  for (const dtype of ["float16", "bfloat16"]) {
    const dir = await makeTestDir("device-dtype");
    const result = await sent([
      "reproduce",
      "--store",
      `${dir}/store`,
      "--set",
      `runtime.dtype=${dtype}`,
    ]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      new RegExp(`config key "runtime\\.dtype" got "${dtype}"; expected one of float32$`, "m"),
    );
    assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
    await assert.rejects(Deno.stat(`${dir}/store`), Deno.errors.NotFound, "no store written");
  }
});

Deno.test("reproduce --device webgpu after a CPU run finds the stages that never run ONNX Runtime cached", async () => {
  const dir = await makeTestDir("device-keys");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const again = await sentOk(["reproduce", ...store, "--device", "webgpu"]);
  assert.match(again.stdout, /12 nodes: 12 cached/);
});
