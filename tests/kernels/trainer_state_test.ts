import assert from "node:assert/strict";
import { ENGINE_SUBPROCESS_FLAGS } from "../../kernels/placement.ts";
import { decays } from "../../kernels/policy.ts";
import { openSafetensors, writeSafetensors } from "../../kernels/safetensors.ts";
import { HostTensor, hostTensor } from "../../kernels/session.ts";
import {
  loadTrainerState,
  TRAINER_STATE_FILE,
  TRAINER_STATE_FORMAT,
  TrainerStateError,
} from "../../kernels/trainer_state.ts";
import { buildTrainStep, splitRows, Trainer, withMicroWeight } from "../../kernels/train_step.ts";
import { buildLossGraph, nextTokenLoss, parameterShapes } from "../../kernels/transformer.ts";
import {
  initToyParams,
  mlpModel,
  normalStream,
  randomNormal,
  TINY_QWEN2,
} from "../../kernels/_toy_models.ts";
import { makeTestDir } from "../_tmp.ts";

const dir = await makeTestDir("trainer-state");

// A tiny Qwen2 trained with gradient accumulation, as the RL stage trains.
const QWEN_STEP = buildTrainStep(withMicroWeight(buildLossGraph(TINY_QWEN2, nextTokenLoss)), {
  params: [...parameterShapes(TINY_QWEN2).keys()].map((name) => ({ name, decay: decays(name) })),
});

function qwenParams(): Record<string, HostTensor> {
  const next = normalStream(17);
  const out: Record<string, HostTensor> = {};
  for (const [name, shape] of parameterShapes(TINY_QWEN2)) {
    const data = name.endsWith("norm.weight")
      ? new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(1)
      : randomNormal(shape, next, 0.2);
    out[name] = hostTensor("float32", shape, data);
  }
  return out;
}

/** Mini-batch `k`: 4 unpadded rows of 6 tokens, as 2 micro-batches of weight ½. */
function miniBatch(k: number): Record<string, HostTensor>[] {
  const [rows, length] = [4, 6];
  const n = rows * length;
  const dims = [rows, length];
  const batch = {
    input_ids: new HostTensor(
      "int32",
      dims,
      Int32Array.from({ length: n }, (_, i) => 1 + ((i * 11 + k * 5) % 31)),
    ),
    attention_mask: new HostTensor("int32", dims, new Int32Array(n).fill(1)),
    position_ids: new HostTensor(
      "int32",
      dims,
      Int32Array.from({ length: n }, (_, i) => i % length),
    ),
    loss_mask: new HostTensor("float32", dims, new Float32Array(n).fill(1)),
    micro_weight: hostTensor("float32", [], [0.5]),
  };
  return splitRows(batch, 2);
}

/** Take the updates of mini-batches `from` … `to − 1`. */
async function train(trainer: Trainer, from: number, to: number): Promise<void> {
  for (let k = from; k < to; k++) {
    for (const micro of miniBatch(k)) await trainer.accumulate(micro);
    assert.equal((await trainer.apply({ lr: 1e-2 })).applied, true);
  }
}

async function sha256(t: HostTensor): Promise<string> {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function digests(trainer: Trainer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [name, t] of await trainer.state()) out[name] = await sha256(t);
  return out;
}

Deno.test("a trainer restored from its saved state continues bit for bit like one that never stopped", async () => {
  const options = { threads: 2, compile: [] };
  const straight = await Trainer.create(QWEN_STEP, qwenParams(), options);
  await train(straight, 0, 5);

  const first = await Trainer.create(QWEN_STEP, qwenParams(), options);
  await train(first, 0, 3);
  const path = `${dir}/resume-${TRAINER_STATE_FILE}`;
  await first.saveState(path);
  await first.release();
  const resumed = await Trainer.restore(QWEN_STEP, path, options);
  assert.equal(resumed.updates, 3);
  await train(resumed, 3, 5);

  assert.equal(resumed.updates, straight.updates);
  const [a, b] = [await digests(resumed), await digests(straight)];
  assert.equal(Object.keys(a).length, 3 * parameterShapes(TINY_QWEN2).size); // p, m, v
  assert.deepEqual(a, b);
  await resumed.release();
  await straight.release();
});

Deno.test("saveState() writes every parameter and moment as F32 with format, version and update count", async () => {
  const trainer = await Trainer.create(QWEN_STEP, qwenParams(), { threads: 2, compile: [] });
  await train(trainer, 0, 1);
  const path = `${dir}/layout-${TRAINER_STATE_FILE}`;
  await trainer.saveState(path);
  using file = await openSafetensors(path);
  assert.deepEqual(file.metadata, {
    format: TRAINER_STATE_FORMAT,
    version: "1",
    updates: "1",
    graph: "qwen2_loss_train_step",
  });
  assert.deepEqual(file.names().sort(), QWEN_STEP.state.map((s) => s.input).sort());
  assert.ok(file.names().every((n) => file.info(n).dtype === "F32"));
  assert.deepEqual(file.info("adam.v.model.norm.weight").dims, [TINY_QWEN2.hiddenSize]);
  // Between micro-batches there is no consistent state to save.
  await trainer.accumulate(miniBatch(1)[0]);
  await assert.rejects(
    () => trainer.saveState(path),
    /trainer state .*: 1 micro-batches are accumulated but not applied; save after apply\(\)/,
  );
  await trainer.release();
});

// ----- refusals, on a small MLP -----------------------------------------------------------------

function mlpStep(hidden: number, layers: number) {
  const model = mlpModel({ rows: 4, inputs: 3, hidden, outputs: 1, layers });
  const step = buildTrainStep(model.graph, { params: model.params.map((p) => p.name) });
  const init = initToyParams(model.params, 1);
  const params = Object.fromEntries(
    model.params.map((p) => [p.name, hostTensor("float32", p.shape, init.get(p.name)!)]),
  );
  return { step, params };
}

async function savedMlpState(name: string): Promise<string> {
  const { step, params } = mlpStep(6, 2);
  const trainer = await Trainer.create(step, params, { threads: 1, compile: [] });
  const path = `${dir}/${name}`;
  await trainer.saveState(path);
  await trainer.release();
  return path;
}

async function refusal(path: string, step = mlpStep(6, 2).step): Promise<TrainerStateError> {
  const e = await Trainer.restore(step, path, { threads: 1 }).then(
    () => assert.fail(`restore of ${path} succeeded`),
    (e) => e,
  );
  assert.ok(e instanceof TrainerStateError, String(e));
  assert.equal(e.path, path);
  return e;
}

Deno.test("Trainer.restore() refuses the state of another model, naming the file and every mismatch", async () => {
  const path = await savedMlpState("other-model.safetensors");
  const wider = await refusal(path, mlpStep(8, 2).step);
  assert.match(wider.message, new RegExp(`^trainer state ${path}:\n`));
  assert.ok(
    wider.problems.includes("tensor l0.weight is F32 [3,6], expected F32 [3,8]"),
    wider.message,
  );
  assert.ok(wider.problems.includes("tensor adam.v.l1.bias is F32 [6], expected F32 [8]"));
  const shallower = await refusal(path, mlpStep(6, 1).step);
  assert.ok(
    shallower.problems.includes("unexpected tensor adam.m.l1.weight (not a state of this step)"),
    shallower.message,
  );
  const deeper = await refusal(path, mlpStep(6, 3).step);
  assert.ok(
    deeper.problems.includes("missing tensor adam.m.l2.weight: expected F32 [6,6]"),
    deeper.message,
  );
});

Deno.test("Trainer.restore() refuses another format version, a missing update count and a narrowed dtype", async () => {
  const { step, params } = mlpStep(6, 2);
  const trainer = await Trainer.create(step, params, { threads: 1, compile: [] });
  const tensors = await trainer.state();
  await trainer.release();
  const write = async (name: string, metadata: Record<string, string>, bf16 = false) => {
    const path = `${dir}/${name}`;
    await writeSafetensors(path, tensors, { metadata, float32As: bf16 ? "BF16" : "F32" });
    return path;
  };
  const v2 = await refusal(
    await write("v2.safetensors", { format: TRAINER_STATE_FORMAT, version: "2", updates: "4" }),
  );
  assert.deepEqual(v2.problems, [
    'metadata version is "2", expected "1" (written by another version of the trainer)',
  ]);
  assert.match(v2.message, /^trainer state .*v2\.safetensors: metadata version is "2"/);
  const hf = await refusal(await write("hf.safetensors", { format: "pt" }));
  assert.deepEqual(hf.problems, [
    `metadata format is "pt", expected "${TRAINER_STATE_FORMAT}" (is this a trainer state file?)`,
    'metadata version is null, expected "1" (written by another version of the trainer)',
    "metadata updates is null, expected a non-negative integer",
  ]);
  const narrowed = await refusal(
    await write(
      "bf16.safetensors",
      { format: TRAINER_STATE_FORMAT, version: "1", updates: "0" },
      true,
    ),
  );
  assert.ok(narrowed.problems.includes("tensor l0.weight is BF16 [3,6], expected F32 [3,6]"));
  const missing = await refusal(`${dir}/absent.safetensors`);
  assert.match(missing.message, /absent\.safetensors: cannot read: /);
  await Deno.writeFile(`${dir}/short.safetensors`, new Uint8Array(5));
  const short = await refusal(`${dir}/short.safetensors`);
  assert.match(short.message, /short\.safetensors: file is 5 bytes/);
});

Deno.test("a save killed part way leaves the previous complete state file, never a partial one", async () => {
  const path = `${dir}/killed-${TRAINER_STATE_FILE}`;
  const writer = new URL("./_trainer_state_writer.ts", import.meta.url).pathname;
  const expect = new Map([["w", { dtype: "float32" as const, dims: [4 << 20] }]]);
  // Kill the writer during a save; retry if the kill landed between two saves.
  let midSave = false;
  for (let attempt = 0; attempt < 4 && !midSave; attempt++) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", ...ENGINE_SUBPROCESS_FLAGS, writer, path],
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(60_000),
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    // Saves 1 … k − 1 are complete when save k starts writing its tensor.
    const k = 3 + attempt;
    let seen = "";
    while (!seen.includes(`writing ${k}\n`)) {
      const { value, done } = await lines.read();
      if (done) assert.fail(`the writer exited after printing ${JSON.stringify(seen)}`);
      seen += value;
    }
    child.kill("SIGKILL");
    await child.status;
    await lines.cancel().catch(() => undefined);
    // A temporary file left behind proves the kill interrupted a save.
    const left = [...Deno.readDirSync(dir)].filter((e) => /^killed-.*\.tmp$/.test(e.name));
    midSave = left.length > 0;
    // The file is the last complete save (save k itself if the kill came after its rename), and
    // it validates and reads back whole.
    const state = await loadTrainerState(path, expect);
    const expected = midSave ? [k - 1] : [k - 1, k];
    assert.ok(expected.includes(state.updates), `updates ${state.updates}, expected ${expected}`);
    const w = state.tensors.get("w")!.float32();
    assert.ok(w.every((x) => x === state.updates), "the tensor belongs to the saved update count");
    for (const e of left) Deno.removeSync(`${dir}/${e.name}`);
  }
  await Deno.remove(path); // 16 MB: do not let reruns pile these up
  assert.ok(midSave, "no kill landed during a save in 4 attempts");
});
