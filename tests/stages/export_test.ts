/**
 * A policy written as an HF model folder opens in other tools: transformers.js (offline, local
 * files only) loads it and greedy-decodes tiny-task prompts into the same text as our sampler;
 * the character tokenizer's `tokenizer.json` encodes like the tokenizer itself; the genai config
 * names the decoder's real inputs and outputs.
 */

import assert from "node:assert/strict";
import { env, pipeline } from "@huggingface/transformers";
import * as ort from "onnxruntime-node";
import { makeTestDir } from "../_tmp.ts";
import { tinyAimeTokenizer } from "../../data/tokenizer_char.ts";
import { loadHfTokenizer } from "../../data/tokenizer_hf.ts";
import { generateTinyAime } from "../../data/tiny_aime/generate.ts";
import { initWeights, Policy } from "../../kernels/policy.ts";
import { generate } from "../../kernels/sampling.ts";
import { tinyPolicyConfig } from "../../kernels/transformer.ts";
import { writeHfModelFolder } from "../../stages/_export.ts";
import { charPolicyDescriptor, loadStagePolicy, promptIdsOf } from "../../stages/_policy_io.ts";

const tokenizer = tinyAimeTokenizer();
const descriptor = charPolicyDescriptor(tokenizer);
const config = tinyPolicyConfig(tokenizer.vocabSize);
// Larger weights than HF's initialisation, so the greedy continuation is not one repeated token.
const weights = initWeights(config, { seed: 7, std: 0.3 });
const problems = generateTinyAime("tiny-aime24", { seed: 3, size: 3 }).rows.map((r) => r.problem);

/** A fresh folder holding the policy, written once per test. */
async function exportedFolder(prefix: string): Promise<{ root: string; dir: string }> {
  const root = await makeTestDir(prefix);
  const policy = Policy.create(config, weights, { threads: 2 });
  await writeHfModelFolder(`${root}/policy`, { policy, tokenizer, descriptor });
  await policy.release();
  return { root, dir: `${root}/policy` };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("writeHfModelFolder() writes config ids, generation config, tokenizer files, onnx/model.onnx, genai_config.json and the descriptor", async () => {
  const { dir } = await exportedFolder("export-files");
  for (
    const file of [
      "config.json",
      "generation_config.json",
      "genai_config.json",
      "model.safetensors",
      "onnx/model.onnx",
      "sent_policy.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]
  ) {
    assert.ok((await Deno.stat(`${dir}/${file}`)).isFile, file);
  }
  const hf = await readJson(`${dir}/config.json`);
  assert.deepEqual(
    [hf.bos_token_id, hf.eos_token_id, hf.pad_token_id, hf.model_type],
    [1, 2, 0, "qwen2"],
  );
  const gen = await readJson(`${dir}/generation_config.json`);
  assert.deepEqual([gen.bos_token_id, gen.eos_token_id, gen.pad_token_id], [1, 2, 0]);

  // genai: the names it is told are the decoder's own, layer by layer.
  const genai = (await readJson(`${dir}/genai_config.json`)).model as Record<string, unknown>;
  const decoder = genai.decoder as Record<string, Record<string, string> | string | number>;
  const session = await ort.InferenceSession.create(`${dir}/${decoder.filename}`);
  const inputs = decoder.inputs as Record<string, string>;
  const outputs = decoder.outputs as Record<string, string>;
  const layer = (pattern: string, i: number) => pattern.replace("%d", String(i));
  const expectIn = [inputs.input_ids, inputs.attention_mask, inputs.position_ids];
  const expectOut = [outputs.logits];
  for (let i = 0; i < config.numLayers; i++) {
    expectIn.push(layer(inputs.past_key_names, i), layer(inputs.past_value_names, i));
    expectOut.push(layer(outputs.present_key_names, i), layer(outputs.present_value_names, i));
  }
  assert.deepEqual([...session.inputNames].sort(), expectIn.sort());
  assert.deepEqual([...session.outputNames].sort(), expectOut.sort());
  assert.deepEqual(
    [decoder.num_hidden_layers, decoder.num_key_value_heads, decoder.head_size],
    [config.numLayers, config.numKvHeads, config.headDim],
  );
  await session.release();

  // The folder is also a base checkpoint this pipeline opens (descriptor, weights, tokenizer).
  const bundle = await loadStagePolicy(dirname(dir), { threads: 2 });
  assert.deepEqual(
    bundle.policy.weights.get("model.norm.weight"),
    weights.get("model.norm.weight"),
  );
  await bundle.policy.release();
});

Deno.test("the character tokenizer's tokenizer.json encodes and decodes like the tokenizer, and its chat template renders the task's prompt", async () => {
  const { dir } = await exportedFolder("export-tokenizer");
  const hf = await loadHfTokenizer(dir);
  assert.deepEqual([hf.bosId, hf.eosId, hf.padId, hf.vocabSize], [1, 2, 0, tokenizer.vocabSize]);
  for (const problem of problems) {
    const text = `${problem}\n`;
    assert.deepEqual(hf.encode(text, { bos: true }), tokenizer.encode(text, { bos: true }));
    const ids = promptIdsOf(tokenizer, "tiny-aime", problem);
    assert.deepEqual(hf.encode(hf.applyChatTemplate([{ role: "user", content: problem }])), ids);
    assert.equal(hf.decode([...ids, 2, 5], { stopAtEos: true }), text);
  }
});

Deno.test("transformers.js loads the folder offline and its text-generation pipeline writes the same greedy text as our sampler", async () => {
  const { root } = await exportedFolder("export-tjs");
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = `${root}/`;
  const generator = await pipeline("text-generation", "policy", { dtype: "fp32" });
  const maxNewTokens = 24;
  const policy = Policy.create(config, weights, { threads: 2 });
  const ours = await generate(
    policy,
    problems.map((p, i) => ({
      prompt: promptIdsOf(tokenizer, "tiny-aime", p),
      problem: i,
      sample: 0,
    })),
    { seed: 1, maxNewTokens, padId: 0, eosId: tokenizer.eosId, temperature: 0 },
  );
  await policy.release();
  for (const [i, problem] of problems.entries()) {
    const expected = tokenizer.decode(ours[i].tokens, { stopAtEos: true });
    assert.ok(expected.length > 0, `our sampler wrote nothing for ${problem}`);
    // A plain prompt (the post-processor adds <bos>) and a chat turn (the chat template does).
    const plain = await generator(`${problem}\n`, {
      max_new_tokens: maxNewTokens,
      do_sample: false,
    });
    assert.equal(generatedText(plain), `${problem}\n${expected}`, `plain prompt ${problem}`);
    const chat = await generator([{ role: "user", content: problem }], {
      max_new_tokens: maxNewTokens,
      do_sample: false,
    });
    assert.equal(lastTurn(chat), expected, `chat prompt ${problem}`);
  }
  await generator.dispose();
});

Deno.test("writeHfModelFolder() copies an HF tokenizer's files from tokenizerDir, and asks for it when missing", async () => {
  const { root, dir } = await exportedFolder("export-hf-copy");
  const hf = await loadHfTokenizer(dir);
  const policy = Policy.create(config, weights, { threads: 2 });
  const out = await writeHfModelFolder(`${root}/copy`, {
    policy,
    tokenizer: hf,
    descriptor,
    tokenizerDir: dir,
  });
  for (const file of ["tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
    assert.ok(out.files.includes(file), file);
    assert.equal(
      await Deno.readTextFile(`${root}/copy/${file}`),
      await Deno.readTextFile(`${dir}/${file}`),
    );
  }
  await assert.rejects(
    writeHfModelFolder(`${root}/none`, { policy, tokenizer: hf, descriptor }),
    /expected tokenizerDir, the folder holding its tokenizer\.json/,
  );
  await policy.release();
});

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

/** `generated_text` of a one-prompt text-generation result. */
function generatedText(result: unknown): string {
  const text = (result as { generated_text: unknown }[])[0].generated_text;
  assert.equal(typeof text, "string");
  return text as string;
}

/** The assistant turn that a chat-input text-generation result ends with. */
function lastTurn(result: unknown): string {
  const turns = (result as { generated_text: { role: string; content: string }[] }[])[0]
    .generated_text;
  const last = turns.at(-1)!;
  assert.equal(last.role, "assistant");
  return last.content;
}
