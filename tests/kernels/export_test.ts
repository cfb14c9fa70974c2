import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { EXPORT_FILES, exportDecoder } from "../../kernels/export.ts";
import { initWeights, padBatch, Policy } from "../../kernels/policy.ts";
import { qwen2ConfigFromHF } from "../../kernels/transformer.ts";
import { makeTestDir } from "../_tmp.ts";

const CONFIG = qwen2ConfigFromHF({
  vocab_size: 29,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
});
const WEIGHTS = initWeights(CONFIG, { seed: 8, std: 0.3 });
const { numLayers: L, numKvHeads: K, headDim: E, vocabSize: V } = CONFIG;

const int64 = (xs: ArrayLike<number>) => BigInt64Array.from(Array.from(xs), (x) => BigInt(x));

/** Prefill with empty pasts, then one decode step, through a plain InferenceSession. */
async function prefillThenDecode(modelPath: string, prompts: number[][], next: number[]) {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const batch = padBatch(prompts, { padId: 0 });
  const [B, T] = [batch.batch, batch.length];
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", int64(batch.ids), [B, T]),
    attention_mask: new ort.Tensor("int64", int64(batch.mask), [B, T]),
    position_ids: new ort.Tensor("int64", int64(batch.positions), [B, T]),
  };
  for (let i = 0; i < L; i++) {
    for (const kv of ["key", "value"]) {
      feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor("float32", new Float32Array(0), [
        B,
        K,
        0,
        E,
      ]);
    }
  }
  const first = await session.run(feeds);
  const mask = new Int32Array(B * (T + 1));
  for (let r = 0; r < B; r++) {
    mask.set(batch.mask.subarray(r * T, (r + 1) * T), r * (T + 1));
    mask[r * (T + 1) + T] = 1;
  }
  const step: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", int64(next), [B, 1]),
    attention_mask: new ort.Tensor("int64", int64(mask), [B, T + 1]),
    position_ids: new ort.Tensor("int64", int64(prompts.map((p) => p.length)), [B, 1]),
  };
  for (let i = 0; i < L; i++) {
    for (const kv of ["key", "value"]) {
      step[`past_key_values.${i}.${kv}`] = first[`present.${i}.${kv}`];
    }
  }
  const second = await session.run(step);
  const names = { inputs: [...session.inputNames], outputs: [...session.outputNames] };
  await session.release();
  return { first, second, names, batch };
}

for (const externalData of [false, true]) {
  Deno.test(`exportDecoder() ${externalData ? "with external data " : ""}loads in a plain InferenceSession and matches our logits`, async () => {
    const dir = await makeTestDir("export");
    const exported = await exportDecoder(CONFIG, WEIGHTS, dir, {
      externalData,
      config: { eos_token_id: 2 },
    });
    assert.equal(exported.model, `${dir}/${EXPORT_FILES.model}`);
    assert.equal(exported.data !== undefined, externalData);
    const hf = JSON.parse(await Deno.readTextFile(`${dir}/${EXPORT_FILES.config}`));
    assert.equal(hf.model_type, "qwen2");
    assert.equal(hf.eos_token_id, 2);

    const prompts = [[1, 5, 7, 9, 11], [1, 8, 3]];
    const { first, second, names, batch } = await prefillThenDecode(exported.model, prompts, [
      4,
      6,
    ]);
    assert.deepEqual(names.inputs, [
      "input_ids",
      "attention_mask",
      "position_ids",
      ...Array.from(
        { length: L },
        (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`],
      ).flat(),
    ]);
    assert.deepEqual(names.outputs, [
      "logits",
      ...Array.from({ length: L }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat(),
    ]);
    const T = batch.length;
    assert.deepEqual(first.logits.dims, [2, T, V]);
    assert.deepEqual(first["present.1.value"].dims, [2, K, T, E]);
    assert.deepEqual(second.logits.dims, [2, 1, V]);
    assert.deepEqual(second["present.0.key"].dims, [2, K, T + 1, E]);

    // Our own full forward over prompt + next token gives the same logits at every real position.
    const policy = Policy.create(CONFIG, WEIGHTS);
    const full = await policy.forward(
      padBatch([[...prompts[0], 4], [...prompts[1], 6]], { padId: 0 }),
    );
    await policy.release();
    const a = first.logits.data as Float32Array;
    const b = second.logits.data as Float32Array;
    let d = 0;
    for (let r = 0; r < 2; r++) {
      for (let t = 0; t < T; t++) {
        if (batch.mask[r * T + t] === 0) continue;
        for (let v = 0; v < V; v++) {
          d = Math.max(d, Math.abs(a[(r * T + t) * V + v] - full[(r * (T + 1) + t) * V + v]));
        }
      }
      for (let v = 0; v < V; v++) {
        d = Math.max(d, Math.abs(b[r * V + v] - full[(r * (T + 1) + T) * V + v]));
      }
    }
    assert.ok(d < 1e-4, `max |Δlogit| = ${d}`);
  });
}

Deno.test("exportDecoder() refuses weights that do not fit the config, naming the tensor", async () => {
  const dir = await makeTestDir("export-bad");
  const bad = new Map(WEIGHTS);
  bad.set("model.layers.1.mlp.up_proj.weight", new Float32Array(7));
  await assert.rejects(
    () => exportDecoder(CONFIG, bad, dir),
    /weight model\.layers\.1\.mlp\.up_proj\.weight must be a Float32Array of 1536 elements \(\[48,32\]\), got 7/,
  );
});
