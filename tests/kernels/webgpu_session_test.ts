import assert from "node:assert/strict";
import { GraphBuilder } from "../../kernels/builder.ts";
import { ENGINE_SUBPROCESS_FLAGS } from "../../kernels/placement.ts";
import {
  compile,
  DeviceTensor,
  download,
  hostTensor,
  type Tensor,
  upload,
} from "../../kernels/session.ts";
import { activeWebGpuDriver, ensureWebGpuDriver } from "../../kernels/swiftshader.ts";

const PROJECT = new URL("../../", import.meta.url).pathname;

function systemHasVulkanLoader(): boolean {
  try {
    Deno.dlopen("libvulkan.so.1", {});
    return true;
  } catch {
    return false;
  }
}

/** w ← w − 0.5·g, and the loss Σ w² of the incoming w. */
function sgdGraph() {
  const b = new GraphBuilder("sgd");
  const w = b.input("w", "float32", [4]);
  const g = b.input("g", "float32", [4]);
  b.output(b.sub(w, b.mul(g, b.scalar(0.5))), "w_next");
  b.output(b.reduceSum(b.mul(w, w), [0], false), "loss");
  return b.build();
}

const G = hostTensor("float32", [4], [1, 1, 1, 1]);

Deno.test("ensureWebGpuDriver() uses SwiftShader when the machine has no Vulkan loader", () => {
  const info = ensureWebGpuDriver();
  assert.equal(activeWebGpuDriver(), info);
  if (systemHasVulkanLoader() && info.driver === "system") return; // a machine with its own driver
  assert.equal(info.driver, "swiftshader");
  assert.equal(info.icdFile, `${PROJECT}.sent/swiftshader/vk_swiftshader_icd.json`);
  const manifest = JSON.parse(Deno.readTextFileSync(info.icdFile!));
  assert.equal(manifest.ICD.library_path, `${PROJECT}.sent/swiftshader/libvk_swiftshader.so`);
  assert.ok(Deno.statSync(manifest.ICD.library_path).size > 1_000_000);
  assert.equal(Deno.env.get("VK_ICD_FILENAMES"), info.icdFile);
});

Deno.test("compile() on webgpu keeps resident outputs on the GPU across runs", async () => {
  const program = await compile(sgdGraph(), { device: "webgpu", residentOutputs: ["w_next"] });
  let w: Tensor = hostTensor("float32", [4], [1, 2, 3, 4]);
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) {
    const out = await program.run({ w, g: G });
    if (w instanceof DeviceTensor) w.dispose();
    w = out.device("w_next");
    losses.push(out.scalar("loss")); // metrics come back to the host
  }
  assert.ok(w instanceof DeviceTensor);
  assert.equal(w.location, "webgpu");
  assert.deepEqual(w.dims, [4]);
  assert.deepEqual(losses, [30, 21, 14]); // Σw² of [1,2,3,4], [.5,1.5,2.5,3.5], [0,1,2,3]
  const host = await download(w);
  assert.deepEqual(host.toNumbers(), [-0.5, 0.5, 1.5, 2.5]);
  w.dispose();
  assert.ok(w.disposed);
  await program.release();
});

Deno.test("DeviceTensor has no data accessor, so GPU data cannot be read by mistake", async () => {
  const t = await upload(hostTensor("float32", [2], [1, 2]));
  // @ts-expect-error: a device tensor has no `data`; read it with download()
  assert.equal(t.data, undefined);
  assert.equal("getData" in t, false);
  assert.deepEqual((await download(t)).toNumbers(), [1, 2]);
  t.dispose();
});

Deno.test("a CPU program refuses a webgpu-resident tensor with an error naming the input", async () => {
  const gpu = await upload(hostTensor("float32", [4], [1, 2, 3, 4]));
  const cpu = await compile(sgdGraph(), { device: "cpu", threads: 1 });
  await assert.rejects(
    () => cpu.run({ w: gpu, g: G }),
    /program sgd \(cpu\): input w is a webgpu-resident tensor; a cpu session cannot read it/,
  );
  // After download() the same values are accepted.
  const out = await cpu.run({ w: await download(gpu), g: G });
  assert.equal(out.scalar("loss"), 30);
  gpu.dispose();
  await cpu.release();
});

Deno.test("a disposed DeviceTensor cannot be fed again", async () => {
  const program = await compile(sgdGraph(), { device: "webgpu", residentOutputs: ["w_next"] });
  const out = await program.run({ w: hostTensor("float32", [4], [1, 2, 3, 4]), g: G });
  const w = out.device("w_next");
  w.dispose();
  await assert.rejects(
    () => program.run({ w, g: G }),
    /input w: the webgpu tensor was disposed and cannot be fed again/,
  );
  await program.release();
});

Deno.test("RunOutputs.host() on a resident output says to download it", async () => {
  const program = await compile(sgdGraph(), { device: "webgpu", residentOutputs: ["w_next"] });
  const out = await program.run({ w: hostTensor("float32", [4], [1, 2, 3, 4]), g: G });
  assert.throws(
    () => out.host("w_next"),
    /output w_next is resident on webgpu; read it with download\(\)/,
  );
  out.disposeExcept();
  await program.release();
});

Deno.test({
  name: "compile() on webgpu with no Vulkan device is a clear error naming the fix",
  ignore: systemHasVulkanLoader(),
  fn: async () => {
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...ENGINE_SUBPROCESS_FLAGS,
        `${PROJECT}tests/kernels/_webgpu_compile_probe.ts`,
      ],
      cwd: PROJECT,
      env: { SENT_WEBGPU_DRIVER: "system" },
      stdout: "piped",
      stderr: "null",
    }).output();
    const said = new TextDecoder().decode(stdout).trim();
    assert.match(said, /^DeviceUnavailableError: compile\(probe\) on webgpu: no Vulkan device/);
    assert.match(said, /set SENT_WEBGPU_DRIVER=swiftshader/);
  },
});
