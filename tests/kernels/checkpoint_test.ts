import assert from "node:assert/strict";
import {
  CheckpointError,
  INDEX_FILE,
  loadCheckpoint,
  naturalCompare,
  openCheckpoint,
  saveCheckpoint,
} from "../../kernels/checkpoint.ts";
import { openSafetensors, type TensorSource } from "../../kernels/safetensors.ts";
import { makeTestDir } from "../_tmp.ts";

const root = await makeTestDir("checkpoint");
let dirCounter = 0;

function scratchDir(name: string): string {
  return `${root}/${name}-${dirCounter++}`;
}

/** A tiny Qwen2-shaped config (2 layers, GQA 4 query heads over 2 KV heads). */
const CONFIG = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  hidden_size: 8,
  intermediate_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 12,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  tie_word_embeddings: false,
  torch_dtype: "float32",
};

/** HF names and shapes of that model (head dim 2, so k/v projections are 2 × 2 = 4 wide). */
function qwen2Shapes(layers: number): Map<string, number[]> {
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [12, 8]]]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    shapes.set(`${p}.input_layernorm.weight`, [8]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [8, 8]);
    shapes.set(`${p}.self_attn.q_proj.bias`, [8]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [4, 8]);
    shapes.set(`${p}.self_attn.k_proj.bias`, [4]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [4, 8]);
    shapes.set(`${p}.self_attn.v_proj.bias`, [4]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [8, 8]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [8]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [16, 8]);
    shapes.set(`${p}.mlp.up_proj.weight`, [16, 8]);
    shapes.set(`${p}.mlp.down_proj.weight`, [8, 16]);
  }
  shapes.set("model.norm.weight", [8]);
  shapes.set("lm_head.weight", [12, 8]);
  return shapes;
}

/** Deterministic tensors for those shapes; values are multiples of 1/8, exact in bf16. */
function qwen2Tensors(shapes: ReadonlyMap<string, number[]>): Map<string, TensorSource> {
  const out = new Map<string, TensorSource>();
  let seed = 1;
  for (const [name, dims] of shapes) {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = ((seed * 31 + i * 17) % 64 - 32) / 8;
    seed++;
    out.set(name, { dtype: "float32", dims, data });
  }
  return out;
}

function assertSameTensors(
  got: ReadonlyMap<string, { dims: readonly number[]; data: unknown }>,
  want: ReadonlyMap<string, TensorSource>,
): void {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [name, t] of want) {
    assert.deepEqual(got.get(name)!.dims, t.dims, name);
    assert.deepEqual(got.get(name)!.data, t.data, name);
  }
}

Deno.test("saveCheckpoint() writes the HF layout and loadCheckpoint() reads it back exactly", async () => {
  const dir = scratchDir("single");
  const shapes = qwen2Shapes(2);
  const tensors = qwen2Tensors(shapes);
  const saved = await saveCheckpoint(dir, CONFIG, tensors);
  assert.deepEqual(saved.files, ["model.safetensors"]);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, ["config.json", "model.safetensors"]);

  const configText = await Deno.readTextFile(`${dir}/config.json`);
  assert.ok(configText.startsWith('{\n  "architectures": [\n    "Qwen2ForCausalLM"\n  ],'));
  using file = await openSafetensors(`${dir}/model.safetensors`);
  assert.deepEqual(file.metadata, { format: "pt" });
  assert.equal(file.info("model.layers.1.self_attn.k_proj.weight").dtype, "F32");

  const loaded = await loadCheckpoint(dir, { expect: shapes });
  assert.deepEqual(loaded.config, CONFIG);
  assertSameTensors(loaded.tensors, tensors);
});

Deno.test("saveCheckpoint() shards over the size limit and loadCheckpoint() follows the index", async () => {
  const dir = scratchDir("sharded");
  const shapes = qwen2Shapes(12);
  const tensors = qwen2Tensors(shapes);
  const saved = await saveCheckpoint(dir, CONFIG, tensors, {
    float32As: "BF16",
    maxShardBytes: 2000,
  });
  assert.ok(saved.files.length > 2);
  const n = String(saved.files.length).padStart(5, "0");
  assert.deepEqual(saved.files[0], `model-00001-of-${n}.safetensors`);
  const index = JSON.parse(await Deno.readTextFile(`${dir}/${INDEX_FILE}`));
  const bf16Bytes = [...shapes.values()].reduce((s, d) => s + 2 * d[0] * (d[1] ?? 1), 0);
  assert.equal(index.metadata.total_size, bf16Bytes);
  assert.equal(saved.totalBytes, bf16Bytes);
  assert.deepEqual(Object.keys(index.weight_map).sort(), [...shapes.keys()].sort());
  // Natural order keeps layers together: layer 2 is in an earlier shard than layer 10.
  const shardOf = (name: string) => saved.files.indexOf(index.weight_map[name]);
  assert.ok(
    shardOf("model.layers.2.mlp.up_proj.weight") < shardOf("model.layers.10.mlp.up_proj.weight"),
  );
  for (const f of saved.files) {
    using file = await openSafetensors(`${dir}/${f}`);
    const dataBytes = file.names().reduce((s, n) => s + file.info(n).end - file.info(n).begin, 0);
    assert.ok(dataBytes <= 2000, `${f} holds ${dataBytes} bytes of tensors`);
  }

  const loaded = await loadCheckpoint(dir, { expect: shapes });
  assertSameTensors(loaded.tensors, tensors); // multiples of 1/8 in [-4, 4) are exact in bf16
  using reader = await openCheckpoint(dir);
  const info = reader.info("model.layers.10.mlp.down_proj.weight");
  assert.equal(info.dtype, "BF16");
  assert.ok(info.file.endsWith(index.weight_map["model.layers.10.mlp.down_proj.weight"]));
});

Deno.test("saveCheckpoint() removes the weights of the other layout left by an earlier save", async () => {
  const dir = scratchDir("relayout");
  const tensors = qwen2Tensors(qwen2Shapes(4));
  await saveCheckpoint(dir, CONFIG, tensors, { maxShardBytes: 1000 });
  await saveCheckpoint(dir, CONFIG, tensors);
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "config.json",
    "model.safetensors",
  ]);
  const saved = await saveCheckpoint(dir, CONFIG, tensors, { maxShardBytes: 1000 });
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assert.deepEqual(names, ["config.json", INDEX_FILE, ...saved.files].sort());
});

Deno.test("loadCheckpoint() names missing, misshapen and unexpected tensors with their shapes", async () => {
  const dir = scratchDir("mismatch");
  const shapes = qwen2Shapes(1);
  const tensors = qwen2Tensors(shapes);
  tensors.delete("model.layers.0.mlp.gate_proj.weight");
  tensors.set("model.layers.0.self_attn.rotary_emb.inv_freq", {
    dtype: "float32",
    dims: [1],
    data: new Float32Array(1),
  });
  const expect = new Map(shapes);
  expect.set("model.layers.0.self_attn.k_proj.weight", [8, 8]); // a model wanting 4 KV heads
  await saveCheckpoint(dir, CONFIG, tensors);

  const error = await loadCheckpoint(dir, { expect }).then(
    () => assert.fail("load should fail"),
    (e) => e,
  );
  assert.ok(error instanceof CheckpointError);
  assert.deepEqual(error.problems, [
    `tensor model.layers.0.self_attn.k_proj.weight has shape [4,8] (F32 in ${dir}/model.safetensors), ` +
    "expected [8,8]",
    "missing tensor model.layers.0.mlp.gate_proj.weight: expected shape [16,8]",
    "unexpected tensor model.layers.0.self_attn.rotary_emb.inv_freq [1]",
  ]);
  assert.match(error.message, new RegExp(`^checkpoint ${dir}:\\n {2}tensor model`));

  expect.set("model.layers.0.self_attn.k_proj.weight", [4, 8]);
  expect.delete("model.layers.0.mlp.gate_proj.weight");
  const loaded = await loadCheckpoint(dir, {
    expect,
    allowExtra: (name) => name.endsWith(".rotary_emb.inv_freq"),
  });
  assert.equal(loaded.tensors.size, expect.size);
  assert.ok(!loaded.tensors.has("model.layers.0.self_attn.rotary_emb.inv_freq"));
});

/** Save a sharded checkpoint, then rewrite its index's weight_map through `edit`. */
async function shardedWithIndex(
  name: string,
  edit: (map: Record<string, string>) => void,
): Promise<string> {
  const dir = scratchDir(name);
  await saveCheckpoint(dir, CONFIG, qwen2Tensors(qwen2Shapes(1)), { maxShardBytes: 600 });
  const index = JSON.parse(await Deno.readTextFile(`${dir}/${INDEX_FILE}`));
  edit(index.weight_map);
  await Deno.writeTextFile(`${dir}/${INDEX_FILE}`, JSON.stringify(index));
  return dir;
}

Deno.test("openCheckpoint() refuses index paths that escape the checkpoint directory", async () => {
  const outside = scratchDir("outside");
  await saveCheckpoint(outside, CONFIG, qwen2Tensors(qwen2Shapes(1)));
  const cases: [string, RegExp][] = [
    [`../${outside.split("/").at(-1)}/model.safetensors`, /contains a "\.\." segment/],
    [`${outside}/model.safetensors`, /is absolute/],
    ["sub/../../x.safetensors", /contains a "\.\." segment/],
    ["", /is empty/],
  ];
  for (const [path, message] of cases) {
    const dir = await shardedWithIndex("escape", (map) => map["model.norm.weight"] = path);
    await assert.rejects(openCheckpoint(dir), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.ok(e.message.includes(`shard path ${JSON.stringify(path)}`), e.message);
      assert.match(e.message, message);
      return true;
    });
  }
});

/** Checkpoints with symlinks, made by fixtures/checkpoint/regenerate.sh (tests cannot symlink). */
const FIXTURES = new URL("./fixtures/checkpoint/", import.meta.url).pathname;

Deno.test("openCheckpoint() refuses a shard symlink that resolves outside the directory", async () => {
  await assert.rejects(
    openCheckpoint(`${FIXTURES}escaping`),
    /shard "model-00001-of-00001\.safetensors" resolves to .*fixtures\/checkpoint\/outside\/model\.safetensors, outside .*escaping; shard paths must stay inside/,
  );
});

Deno.test("openCheckpoint() follows hub-cache snapshot symlinks into the repository's blobs", async () => {
  const loaded = await loadCheckpoint(`${FIXTURES}models--tiny--norm/snapshots/0123abcd`, {
    expect: new Map([["model.norm.weight", [2]]]),
  });
  assert.deepEqual(loaded.config, { model_type: "qwen2" });
  assert.deepEqual([...loaded.tensors.get("model.norm.weight")!.data as Float32Array], [1, 2]);
});

Deno.test("openCheckpoint() reports an index that disagrees with its shards", async () => {
  const dir = await shardedWithIndex("disagree", (map) => {
    map["model.norm.weight"] = map["model.embed_tokens.weight"];
  });
  await assert.rejects(
    openCheckpoint(dir),
    /puts tensor model\.norm\.weight in model-\d+-of-\d+\.safetensors, which does not hold it/,
  );
});

Deno.test("openCheckpoint() refuses pickle weights and says why", async () => {
  const dir = scratchDir("pickle");
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(CONFIG));
  await Deno.writeFile(`${dir}/pytorch_model.bin`, new Uint8Array([0x80, 2]));
  await assert.rejects(
    openCheckpoint(dir),
    /has only pickle weights \(pytorch_model\.bin\); only safetensors are loaded, because unpickling can run arbitrary code/,
  );
  await Deno.remove(`${dir}/config.json`);
  await assert.rejects(openCheckpoint(dir), /pickle-\d+:\n {2}has no config\.json/);
});

Deno.test("naturalCompare() orders digit runs by value", () => {
  const names = ["model.layers.10.w", "model.layers.2.w", "lm_head.weight", "model.layers.1.w"];
  assert.deepEqual(names.sort(naturalCompare), [
    "lm_head.weight",
    "model.layers.1.w",
    "model.layers.2.w",
    "model.layers.10.w",
  ]);
});
