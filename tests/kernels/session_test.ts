import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { GraphBuilder } from "../../kernels/builder.ts";
import {
  compile,
  CUDA_INSTALL_HINT,
  DeviceUnavailableError,
  HostTensor,
  hostTensor,
} from "../../kernels/session.ts";
import { normalStream, randomNormal } from "../../kernels/_toy_models.ts";

function affineGraph() {
  const b = new GraphBuilder("affine");
  const x = b.input("x", "float32", ["batch", 3]); //  [batch,3]
  const w = b.input("w", "float32", [3, 2]); //        [3,2]
  const y = b.add(b.matmul(x, w), b.scalar(1)); //     [batch,2]
  b.output(y, "y");
  b.output(b.reduceSum(y, [0, 1], false), "total");
  return b.build();
}

const W = hostTensor("float32", [3, 2], [1, 0, 0, 1, 1, 1]);

Deno.test("compile() runs a graph on the CPU with named inputs and outputs", async () => {
  const program = await compile(affineGraph(), { device: "cpu", threads: 2 });
  assert.deepEqual(program.inputNames, ["x", "w"]);
  assert.deepEqual(program.outputNames, ["y", "total"]);
  const out = await program.run({ x: hostTensor("float32", [2, 3], [1, 2, 3, 4, 5, 6]), w: W });
  assert.deepEqual(out.names, ["y", "total"]);
  assert.deepEqual(out.host("y").toNumbers(), [5, 6, 11, 12]);
  assert.deepEqual(out.host("y").dims, [2, 2]);
  assert.deepEqual(out.scalar("total"), 34);
  await program.release();
});

Deno.test("compile() sets intraOpNumThreads to the machine's core count by default", async () => {
  const program = await compile(affineGraph());
  assert.deepEqual(program.threads, navigator.hardwareConcurrency);
  assert.deepEqual(program.device, "cpu");
  await program.release();
});

Deno.test("Program.run() names the input and the expected type when a feed is wrong", async () => {
  const program = await compile(affineGraph(), { threads: 1 });
  const x = hostTensor("float32", [2, 3], [1, 2, 3, 4, 5, 6]);
  await assert.rejects(() => program.run({ x }), /input w \(float32\[3,2\]\) is not fed/);
  await assert.rejects(
    () => program.run({ x, w: W, bias: W }),
    /unknown input bias; inputs are x, w/,
  );
  await assert.rejects(
    () => program.run({ x, w: hostTensor("float64", [3, 2], [1, 0, 0, 1, 1, 1]) }),
    /input w expects float32\[3,2\], got float64\[3,2\] \(dtype differs\)/,
  );
  await assert.rejects(
    () => program.run({ x, w: hostTensor("float32", [2, 3], [1, 0, 0, 1, 1, 1]) }),
    /input w expects float32\[3,2\], got float32\[2,3\] \(axis 0 must be 3\)/,
  );
  await program.release();
});

Deno.test("Program.run() checks that a symbolic dim has one size across inputs", async () => {
  const b = new GraphBuilder("pair");
  const a = b.input("a", "float32", ["n"]);
  const c = b.input("c", "float32", ["n"]);
  b.output(b.mul(a, c), "y");
  const program = await compile(b.build(), { threads: 1 });
  await assert.rejects(
    () =>
      program.run({
        a: hostTensor("float32", [2], [1, 2]),
        c: hostTensor("float32", [3], [1, 2, 3]),
      }),
    /input c expects float32\[n\], got float32\[3\] \(n is 2 in input a\)/,
  );
  await program.release();
});

Deno.test("RunOutputs.device() and .get() explain what is wrong with the request", async () => {
  const program = await compile(affineGraph(), { threads: 1 });
  const out = await program.run({ x: hostTensor("float32", [1, 3], [1, 1, 1]), w: W });
  assert.throws(() => out.device("y"), /output y is on the host; list it in residentOutputs/);
  assert.throws(() => out.get("z"), /no output z; outputs are y, total/);
  await program.release();
});

Deno.test("compile() rejects residentOutputs that are not outputs", async () => {
  await assert.rejects(
    () => compile(affineGraph(), { residentOutputs: ["w_next"] }),
    /residentOutputs names w_next, which is not an output; outputs are y, total/,
  );
});

Deno.test("HostTensor refuses data that does not fit its shape or dtype", () => {
  assert.throws(
    () => new HostTensor("float32", [2, 2], new Float32Array(3)),
    /3 elements do not fill shape \[2,2\] \(expected 4\)/,
  );
  assert.throws(
    () => new HostTensor("int64", [2], new Int32Array(2)),
    /int64 data must be a BigInt64Array, got Int32Array/,
  );
});

Deno.test("Program.run() on the CPU gives identical bytes across runs and programs", async () => {
  const b = new GraphBuilder("det");
  const x = b.input("x", "float32", [64, 512]);
  const w = b.input("w", "float32", [512, 256]);
  const y = b.softmax(b.matmul(x, w), -1); //            [64,256]
  b.output(y, "y");
  b.output(b.reduceSum(b.mul(y, y), [0], false), "s"); // [256]
  const graph = b.build();
  const next = normalStream(7);
  const feeds = {
    x: hostTensor("float32", [64, 512], randomNormal([64, 512], next, 4)),
    w: hostTensor("float32", [512, 256], randomNormal([512, 256], next)),
  };
  const bytes = (t: HostTensor) => new Uint8Array(t.data.buffer.slice(0));
  const results: Uint8Array[][] = [];
  for (let p = 0; p < 2; p++) {
    const program = await compile(graph, { threads: 2 });
    for (let r = 0; r < 2; r++) {
      const out = await program.run(feeds);
      results.push([bytes(out.host("y")), bytes(out.host("s"))]);
    }
    await program.release();
  }
  for (const r of results.slice(1)) assert.deepEqual(r, results[0]);
});

const cudaProvider = new URL(
  "../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so",
  import.meta.url,
);

Deno.test({
  name: "compile() on cuda without the CUDA provider names the install step",
  ignore: existsSync(cudaProvider),
  fn: async () => {
    const error = await compile(affineGraph(), { device: "cuda" }).then(
      () => assert.fail("compile() on cuda succeeded"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof DeviceUnavailableError, String(error));
    assert.equal(error.device, "cuda");
    assert.ok(error.message.includes("deno install --allow-scripts=npm:onnxruntime-node"));
    assert.ok(error.message.includes("CUDA 12 and cuDNN 9"));
    assert.ok(error.message.includes(CUDA_INSTALL_HINT));
    // The failed provider leaves the CPU path usable.
    const program = await compile(affineGraph(), { threads: 1 });
    await program.release();
  },
});
