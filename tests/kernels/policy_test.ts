import assert from "node:assert/strict";
import { CheckpointError, INDEX_FILE } from "../../kernels/checkpoint.ts";
import { decays, initWeights, padBatch, Policy } from "../../kernels/policy.ts";
import { ConfigError, qwen2ConfigFromHF, qwen2ConfigToHF } from "../../kernels/transformer.ts";
import { makeTestDir } from "../_tmp.ts";

const HF = {
  model_type: "qwen2",
  vocab_size: 23,
  hidden_size: 32,
  intermediate_size: 40,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 1000000,
};
const CONFIG = qwen2ConfigFromHF(HF);
const WEIGHTS = initWeights(CONFIG, { seed: 21, std: 0.2 });
const SEQS = [[1, 4, 9, 3, 7], [1, 5], [1, 8, 6, 3]];

async function logitsOf(policy: Policy): Promise<Float32Array> {
  return await policy.forward(padBatch(SEQS, { padId: 0 }));
}

Deno.test("padBatch() left-pads, masks the padding and counts positions over real tokens", () => {
  const b = padBatch([[7, 8, 9], [5]], { padId: 0 });
  assert.deepEqual([b.batch, b.length], [2, 3]);
  assert.deepEqual([...b.ids], [7, 8, 9, 0, 0, 5]);
  assert.deepEqual([...b.mask], [1, 1, 1, 0, 0, 1]);
  assert.deepEqual([...b.positions], [0, 1, 2, 0, 0, 0]);
  const r = padBatch([[7, 8], [5]], { padId: 3, side: "right", length: 3 });
  assert.deepEqual([...r.ids], [7, 8, 3, 5, 3, 3]);
  assert.deepEqual([...r.positions], [0, 1, 0, 0, 0, 0]);
});

Deno.test("initWeights() is deterministic in the seed: N(0, std²) matrices, zero biases, unit norms", () => {
  const again = initWeights(CONFIG, { seed: 21, std: 0.2 });
  const other = initWeights(CONFIG, { seed: 22, std: 0.2 });
  const q = WEIGHTS.get("model.layers.0.self_attn.q_proj.weight")!;
  assert.deepEqual(again.get("model.layers.0.self_attn.q_proj.weight"), q);
  assert.notDeepEqual(other.get("model.layers.0.self_attn.q_proj.weight"), q);
  const embed = WEIGHTS.get("model.embed_tokens.weight")!;
  const mean = embed.reduce((a, x) => a + x, 0) / embed.length;
  const std = Math.sqrt(embed.reduce((a, x) => a + (x - mean) ** 2, 0) / embed.length);
  assert.ok(Math.abs(mean) < 0.02 && Math.abs(std - 0.2) < 0.02, `mean ${mean} std ${std}`);
  assert.ok(WEIGHTS.get("model.layers.1.self_attn.v_proj.bias")!.every((x) => x === 0));
  assert.ok(WEIGHTS.get("model.norm.weight")!.every((x) => x === 1));
  assert.equal(decays("model.layers.1.mlp.up_proj.weight"), true);
  assert.equal(decays("model.layers.1.self_attn.q_proj.bias"), false);
  assert.equal(decays("model.layers.1.input_layernorm.weight"), false);
});

Deno.test("Policy.save() writes an HF checkpoint that Policy.load() reads back bit-exact and runs", async () => {
  const dir = await makeTestDir("policy-f32");
  const policy = Policy.create(CONFIG, WEIGHTS);
  await policy.save(dir, { config: { eos_token_id: 2 } });
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  assert.deepEqual(config.architectures, ["Qwen2ForCausalLM"]);
  assert.equal(config.eos_token_id, 2);
  assert.equal(config.torch_dtype, "float32");
  const loaded = await Policy.load(dir);
  assert.deepEqual(loaded.config, CONFIG);
  for (const [name, w] of WEIGHTS) assert.deepEqual(loaded.weights.get(name), w, name);
  assert.deepEqual(await logitsOf(loaded), await logitsOf(policy));
  await policy.release();
  await loaded.release();
});

Deno.test("Policy.load() converts bf16 weights and reads sharded checkpoints", async () => {
  const dir = await makeTestDir("policy-bf16");
  const policy = Policy.create(CONFIG, WEIGHTS);
  await policy.save(dir, { float32As: "BF16", maxShardBytes: 8_000 });
  const index = JSON.parse(await Deno.readTextFile(`${dir}/${INDEX_FILE}`));
  assert.ok(new Set(Object.values(index.weight_map)).size > 2, "the weights are sharded");
  const loaded = await Policy.load(dir);
  for (const [name, w] of WEIGHTS) {
    const got = loaded.weights.get(name)!;
    got.forEach((x, i) => assert.ok(Math.abs(x - w[i]) <= Math.abs(w[i]) / 256, `${name}[${i}]`));
  }
  const [a, b] = [await logitsOf(policy), await logitsOf(loaded)];
  const d = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  assert.ok(d > 0 && d < 0.05, `bf16 rounding moves logits a little: max |Δ| = ${d}`);
  await policy.release();
  await loaded.release();
});

Deno.test("Policy.load() fails on mismatched checkpoints, naming each tensor", async () => {
  const dir = await makeTestDir("policy-bad");
  await Policy.create(CONFIG, WEIGHTS).save(dir);
  const rewrite = (changes: Record<string, unknown>) =>
    Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({ ...qwen2ConfigToHF(CONFIG), ...changes }),
    );

  await rewrite({ num_hidden_layers: 3 });
  await assert.rejects(() => Policy.load(dir), (e: unknown) => {
    assert.ok(e instanceof CheckpointError);
    assert.match(
      e.message,
      /missing tensor model\.layers\.2\.self_attn\.q_proj\.weight: expected shape \[32,32\]/,
    );
    return true;
  });
  await rewrite({ intermediate_size: 48 });
  await assert.rejects(
    () => Policy.load(dir),
    /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[40,32\] \(F32 in .*\), expected \[48,32\]/,
  );
  await rewrite({ num_hidden_layers: 1 });
  await assert.rejects(
    () => Policy.load(dir),
    /unexpected tensor model\.layers\.1\.mlp\.up_proj\.weight/,
  );
  await rewrite({ hidden_act: "gelu" });
  await assert.rejects(
    () => Policy.load(dir),
    (e: unknown) => e instanceof ConfigError && e.key === "hidden_act",
  );
});

Deno.test("Policy.load() fails on a truncated weights file, naming the file", async () => {
  const dir = await makeTestDir("policy-truncated");
  await Policy.create(CONFIG, WEIGHTS).save(dir);
  const path = `${dir}/model.safetensors`;
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 100));
  await assert.rejects(() => Policy.load(dir), /model\.safetensors/);
});

Deno.test("Policy.create() lists every missing, misshapen or unknown weight", () => {
  const bad = new Map(WEIGHTS);
  bad.delete("model.norm.weight");
  bad.set("model.layers.0.mlp.up_proj.weight", new Float32Array(3));
  bad.set("model.layers.9.mlp.up_proj.weight", new Float32Array(3));
  assert.throws(() => Policy.create(CONFIG, bad), (e: unknown) => {
    const m = (e as Error).message;
    assert.match(m, /missing tensor model\.norm\.weight: expected float32 \[32\]/);
    assert.match(
      m,
      /tensor model\.layers\.0\.mlp\.up_proj\.weight has 3 Float32Array elements, expected a Float32Array of 1280 \(\[40,32\]\)/,
    );
    assert.match(m, /unexpected tensor model\.layers\.9\.mlp\.up_proj\.weight/);
    return true;
  });
});

for (const temperature of [1, 0.7]) {
  Deno.test(`Policy.score() at temperature ${temperature} gives the full forward's next-token log-probs and entropies`, async () => {
    const policy = Policy.create(CONFIG, WEIGHTS);
    const batch = padBatch(SEQS, { padId: 0 });
    const logits = (await policy.forward(batch)).map((x) => x / temperature);
    const { logprobs, entropy } = await policy.score(batch, { temperature });
    const [T, V] = [batch.length, CONFIG.vocabSize];
    assert.equal(logprobs.length, SEQS.length * (T - 1));
    for (let r = 0; r < SEQS.length; r++) {
      for (let t = 0; t < T - 1; t++) {
        const row = Array.from(logits.subarray((r * T + t) * V, (r * T + t + 1) * V));
        const m = Math.max(...row);
        const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
        const next = batch.ids[r * T + t + 1];
        const h = -row.reduce((a, x) => a + Math.exp(x - lse) * (x - lse), 0);
        assert.ok(Math.abs(logprobs[r * (T - 1) + t] - (row[next] - lse)) < 1e-5);
        assert.ok(Math.abs(entropy[r * (T - 1) + t] - h) < 1e-5);
      }
    }
    await policy.release();
  });
}
