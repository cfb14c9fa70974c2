import assert from "node:assert/strict";
import { makePrng } from "../../data/_prng.ts";
import { corruptTrace } from "../../data/tiny_aime/noise.ts";
import { generateTinyAime } from "../../data/tiny_aime/mod.ts";
import { tinyAimeTokenizer } from "../../data/tokenizer_char.ts";
import { initWeights, Policy } from "../../kernels/policy.ts";
import { generate } from "../../kernels/sampling.ts";
import { qwen2ConfigFromHF } from "../../kernels/transformer.ts";
import { loadStagePolicy, POLICY_DESCRIPTOR } from "../../stages/_policy_io.ts";
import {
  BatchOrder,
  cosineLr,
  policyConfigFromKeys,
  runWarmup,
  sftBatch,
  sftSequence,
  type WarmupKeys,
} from "../../stages/_sft.ts";
import { makeTestDir } from "../_tmp.ts";
import { bpeModel, specialTokens } from "../_hf_tokenizer.ts";
import { sent } from "../pipeline/_harness.ts";

// ----- running the real CLI ---------------------------------------------------------------------

/** A few dozen steps of a width-32 policy on 64 problems: seconds, not minutes. */
const TINY = [
  "data.trainProblems=64",
  "data.evalProblems=8",
  "base.model.width=32",
  "base.model.layers=1",
  "base.model.heads=2",
  "base.model.kvHeads=1",
  "base.model.ffn=64",
  "base.model.context=64",
  "base.warmup.steps=40",
  "base.warmup.batchSize=16",
  "base.warmup.lr=0.01",
  "base.warmup.logEvery=5",
  "base.warmup.checkpointEvery=20",
];

async function stageBase(root: string, sets: string[]) {
  const args = ["stage", "base", "--store", `${root}/store`];
  for (const s of sets) args.push("--set", s);
  const run = await sent(args, { script: "pipeline/cli.ts" });
  return { ...run, out: run.stdout + run.stderr };
}

async function artifactDir(root: string, stage: string): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(`${root}/sent.lock.json`));
  const key: string = lock.nodes[stage].key;
  return `${root}/store/${stage}/${key.slice(0, 2)}/${key}`;
}

async function readJsonl(path: string): Promise<Record<string, number>[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test("base stage (sft) warms up a tiny policy through the DAG; the artifact loads back and the loss falls", async () => {
  const root = await makeTestDir("base-sft");
  const run = await stageBase(root, TINY);
  assert.equal(run.code, 0, run.out);
  const dir = await artifactDir(root, "base");

  // The loss curve: a row every 5 steps, falling well below the untrained ln 28 ≈ 3.3.
  const curve = await readJsonl(`${dir}/metrics.jsonl`);
  assert.deepEqual(curve.map((r) => r.step), [5, 10, 15, 20, 25, 30, 35, 40]);
  assert.ok(curve[0].loss > 2, `first logged loss ${curve[0].loss}`);
  assert.ok(curve.at(-1)!.loss < 0.75 * curve[0].loss, JSON.stringify(curve.map((r) => r.loss)));
  assert.ok(curve.every((r) => r.tokensPerSecond > 0 && r.lr >= 0));
  assert.ok(curve.at(-1)!.lr < 1e-3, "the cosine schedule ends near 0");

  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  assert.equal(summary.kind, "sft");
  assert.equal(summary.steps, 40);
  assert.equal(summary.trainRows, 64);
  assert.equal(summary.finalLoss, curve.at(-1)!.loss);
  assert.ok(summary.params > 10_000 && summary.seconds > 0);

  // One loader gives the policy, its tokenizer, prompts and the reward's extraction.
  const bundle = await loadStagePolicy(dir, { threads: 1 });
  try {
    const config = bundle.policy.config;
    assert.deepEqual(
      [
        config.hiddenSize,
        config.numLayers,
        config.numHeads,
        config.numKvHeads,
        config.maxPositions,
      ],
      [32, 1, 2, 1, 64],
    );
    assert.equal(config.vocabSize, tinyAimeTokenizer().vocabSize);
    assert.deepEqual(
      bundle.promptIds("3+4=?"),
      tinyAimeTokenizer().encode("3+4=?\n", { bos: true }),
    );
    assert.deepEqual(bundle.reward.extraction, { order: ["hash"] });
    const [out] = await generate(bundle.policy, [{
      prompt: bundle.promptIds("3+4=?"),
      problem: 0,
      sample: 0,
    }], {
      seed: 0,
      maxNewTokens: 24,
      padId: bundle.tokenizer.padId,
      eosId: bundle.tokenizer.eosId,
      temperature: 0,
    });
    // After 40 steps the policy already writes in the trace's alphabet, lines of a<op>b=c.
    assert.match(bundle.responseText(out.tokens), /^[0-9+\-*/%=#\n ]+$/);
  } finally {
    await bundle.policy.release();
  }

  // Same config, fresh store: the same weights, byte for byte.
  const again = await makeTestDir("base-sft-again");
  assert.equal((await stageBase(again, TINY)).code, 0);
  assert.deepEqual(
    await Deno.readFile(`${await artifactDir(again, "base")}/policy/model.safetensors`),
    await Deno.readFile(`${dir}/policy/model.safetensors`),
  );
});

Deno.test("base stage (sft) names the base.model key a bad architecture breaks", async () => {
  const root = await makeTestDir("base-sft-bad");
  const run = await stageBase(root, [...TINY, "base.model.heads=3"]);
  assert.equal(run.code, 1, run.out);
  assert.match(run.out, /base\.model\.width \(32\) must be divisible by base\.model\.heads \(3\)/);
});

// ----- checkpoint import ------------------------------------------------------------------------

/** A character-level BPE tokenizer.json with Qwen2's special tokens and a chat template. */
async function writeHfTokenizer(dir: string): Promise<number> {
  const chars = [..."0123456789+-*/%^=()?x;# \nabcdefghijklmnopqrstuvwyz.,{}\\|<>_"];
  const vocab = Object.fromEntries(chars.map((c, i) => [c, i]));
  const specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
  await Deno.writeTextFile(
    `${dir}/tokenizer.json`,
    JSON.stringify({
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: specialTokens(specials, chars.length),
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: { type: "Fuse" },
      model: bpeModel(vocab, []),
    }),
  );
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({
      bos_token: null,
      eos_token: "<|im_end|>",
      pad_token: "<|endoftext|>",
      chat_template: "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}" +
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
    }),
  );
  return chars.length + specials.length;
}

Deno.test("base stage (checkpoint) imports a Hugging Face folder with its tokenizer, refusing pickle", async () => {
  const root = await makeTestDir("base-import");
  const hf = `${root}/hf-model`;
  await Deno.mkdir(hf);
  const vocab = await writeHfTokenizer(hf);
  const config = qwen2ConfigFromHF({
    vocab_size: 64,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 64,
    tie_word_embeddings: true,
  });
  assert.ok(vocab <= 64);
  const source = Policy.create(config, initWeights(config, { seed: 3 }));
  await source.save(hf);
  await source.release();
  await Deno.writeTextFile(`${hf}/README.md`, "not copied");

  const run = await stageBase(root, ["base.kind=checkpoint", `base.checkpoint=${hf}`]);
  assert.equal(run.code, 0, run.out);
  const dir = await artifactDir(root, "base");
  const files = [];
  for await (const e of Deno.readDir(`${dir}/policy`)) files.push(e.name);
  assert.deepEqual(files.sort(), [
    "config.json",
    "model.safetensors",
    POLICY_DESCRIPTOR,
    "tokenizer.json",
    "tokenizer_config.json",
  ]);
  assert.deepEqual(
    await Deno.readFile(`${dir}/policy/model.safetensors`),
    await Deno.readFile(`${hf}/model.safetensors`),
  );
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  assert.equal(summary.kind, "checkpoint");
  assert.equal(summary.tokenizer, "hf");

  const bundle = await loadStagePolicy(dir, { threads: 1 });
  try {
    assert.equal(bundle.descriptor.prompt, "qwen-boxed-chat");
    const text = bundle.tokenizer.decode(bundle.promptIds("3+4=?"), { skipSpecial: false });
    assert.ok(text.startsWith("<|im_start|>user\n3+4=?\n"), text);
    assert.ok(text.endsWith("<|im_start|>assistant\n"), text);
    assert.deepEqual(bundle.reward.extraction?.order, ["boxed", "answer_is"]);
  } finally {
    await bundle.policy.release();
  }

  // Only pickle weights: refused, naming the file.
  const pickle = `${root}/pickle-model`;
  await Deno.mkdir(pickle);
  await Deno.copyFile(`${hf}/config.json`, `${pickle}/config.json`);
  await Deno.writeFile(`${pickle}/pytorch_model.bin`, new Uint8Array(16));
  const refused = await stageBase(root, ["base.kind=checkpoint", `base.checkpoint=${pickle}`]);
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, /base\.checkpoint ".*pickle-model".*pytorch_model\.bin/);
});

Deno.test("base stage (checkpoint) fails with one clear line for a missing or empty base.checkpoint", async () => {
  const root = await makeTestDir("base-import-missing");
  const missing = await stageBase(root, ["base.kind=checkpoint", `base.checkpoint=${root}/nope`]);
  assert.equal(missing.code, 1, missing.out);
  assert.match(
    missing.out,
    /base\.checkpoint ".*\/nope" does not exist; expected a checkpoint folder/,
  );
  const empty = await stageBase(root, ["base.kind=checkpoint", "base.checkpoint="]);
  assert.equal(empty.code, 1, empty.out);
  assert.match(
    empty.out,
    /base\.checkpoint is empty; expected the path of a Hugging Face checkpoint/,
  );
});

// ----- the warm-up's parts ----------------------------------------------------------------------

const WARMUP: WarmupKeys = {
  steps: 20,
  batchSize: 8,
  seqLen: 64,
  lr: 0.01,
  weightDecay: 0.01,
  seed: 4,
  noise: 0.4,
  noiseMax: 9,
  logEvery: 5,
  checkpointEvery: 10,
};

Deno.test("cosineLr() runs one cosine from the peak to 0; BatchOrder walks seeded epochs", () => {
  assert.equal(cosineLr(1e-3, 0, 100), 1e-3);
  assert.ok(Math.abs(cosineLr(1e-3, 50, 100) - 5e-4) < 1e-12);
  assert.ok(cosineLr(1e-3, 99, 100) < 1e-6);
  const order = new BatchOrder(10, 1);
  const epoch = [0, 1, 2, 3, 4].flatMap((s) => order.rows(s, 2));
  assert.deepEqual([...epoch].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(epoch, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(new BatchOrder(10, 1).rows(7, 3), order.rows(7, 3)); // any step, any order
  assert.notDeepEqual(new BatchOrder(10, 2).rows(0, 10), order.rows(0, 10));
});

Deno.test("sftSequence() learns only the trace and <eos>, with noise drawn per (seed, step, row)", () => {
  const tok = tinyAimeTokenizer();
  const [row] = generateTinyAime("tiny-aime-train", { seed: 0, size: 1 }).rows;
  const q = sftSequence(row, tok, { ...WARMUP, noise: 0 }, 0, 0);
  assert.deepEqual(q.ids, tok.encode(`${row.problem}\n${row.solution}`, { bos: true, eos: true }));
  assert.equal(q.promptTokens, row.problem.length + 2);
  const batch = sftBatch([q, sftSequence(row, tok, { ...WARMUP, noise: 0 }, 0, 1)], tok.padId);
  const mask = batch.feeds.loss_mask.data as Float32Array;
  const T = batch.feeds.input_ids.dims[1];
  assert.deepEqual([...mask.slice(0, T)], q.ids.map((_, k) => (k >= q.promptTokens ? 1 : 0)));
  assert.equal(batch.learnt, 2 * (q.ids.length - q.promptTokens));

  // Noise: the stream of (seed 4, step 3, row 5) decides, whatever else was drawn before.
  const noisy = sftSequence(row, tok, { ...WARMUP, noise: 1 }, 3, 5);
  const expected = corruptTrace(row.solution!, makePrng("warmup-noise:4:3:5"), {
    noise: 1,
    noiseMax: 9,
  });
  assert.equal(
    tok.decode(noisy.ids.slice(noisy.promptTokens), { stopAtEos: true }),
    expected.solution,
  );
  assert.equal(noisy.noisy, expected.step !== null);
  assert.throws(
    () => sftSequence(row, tok, { ...WARMUP, seqLen: 8 }, 0, 0),
    /training row tiny-aime-train-0000 is \d+ tokens long .*; base\.warmup\.seqLen is 8/,
  );
});

Deno.test("runWarmup() resumes from its last scratch checkpoint exactly, with the same rows logged", async () => {
  const tok = tinyAimeTokenizer();
  const rows = generateTinyAime("tiny-aime-train", { seed: 0, size: 32 }).rows;
  const model = { width: 32, layers: 1, heads: 2, kvHeads: 1, ffn: 64, context: 64 };
  const config = policyConfigFromKeys(model, tok.vocabSize);
  const initial = initWeights(config, { seed: 4 });
  const scratchDir = await makeTestDir("base-resume");
  const logged: number[] = [];
  let ticks = 0;
  const hooks = {
    scratchDir,
    log: (r: { step: number }) => logged.push(r.step),
    loggedRows: () => logged.length,
    resumed: (n: number) => logged.splice(n),
  };
  // First attempt dies after step 15: the checkpoint of step 10 survives.
  await assert.rejects(
    runWarmup(config, initial, rows, tok, WARMUP, { threads: 1 }, {
      ...hooks,
      tick: () => {
        if (++ticks === 15) throw new Error("killed");
      },
    }),
    /killed/,
  );
  assert.deepEqual(logged, [5, 10, 15]);
  const resumed = await runWarmup(config, initial, rows, tok, WARMUP, { threads: 1 }, hooks);
  assert.equal(resumed.resumedFrom, 10);
  assert.deepEqual(logged, [5, 10, 15, 20]);
  const fresh = await runWarmup(config, initial, rows, tok, WARMUP, { threads: 1 });
  assert.equal(fresh.resumedFrom, 0);
  assert.equal(resumed.tokens, fresh.tokens, "the same batches, in the same order");
  // Parameters, AdamW moments and update count come back exactly: the same weights, bit for bit.
  assert.equal(resumed.finalLoss, fresh.finalLoss);
  for (const [name, w] of fresh.weights) assert.deepEqual(resumed.weights.get(name), w, name);
});
