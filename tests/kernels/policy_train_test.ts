import assert from "node:assert/strict";
import {
  initWeights,
  padBatch,
  Policy,
  policyTrainStep,
  trainedWeights,
  trainerFor,
} from "../../kernels/policy.ts";
import { generate } from "../../kernels/sampling.ts";
import { HostTensor } from "../../kernels/session.ts";
import { buildLossGraph, nextTokenLoss, qwen2ConfigFromHF } from "../../kernels/transformer.ts";

const CONFIG = qwen2ConfigFromHF({
  vocab_size: 20,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  tie_word_embeddings: true,
});
const [BOS, EOS, PAD] = [1, 2, 0];

/** Prompt = BOS + a key token; the continuation after it is what must be memorised. */
const SEQUENCES = [
  [BOS, 3, 4, 5, 6, 7, 8, 9, EOS],
  [BOS, 10, 11, 3, 12, EOS],
  [BOS, 13, 13, 14, 15, 16, 17, 18, 19, EOS],
  [BOS, 5, 4, 3, EOS],
  [BOS, 17, 9, 9, 9, 4, EOS],
];
const PROMPT = 2;

function trainingBatch() {
  const batch = padBatch(SEQUENCES, { padId: PAD });
  const dims = [batch.batch, batch.length];
  // Learn every token after the prompt (the key token itself is unpredictable).
  const lossMask = new Float32Array(batch.mask.length);
  SEQUENCES.forEach((seq, r) => {
    const start = batch.length - seq.length;
    for (let k = PROMPT; k < seq.length; k++) lossMask[r * batch.length + start + k] = 1;
  });
  return {
    input_ids: new HostTensor("int32", dims, batch.ids),
    attention_mask: new HostTensor("int32", dims, batch.mask),
    position_ids: new HostTensor("int32", dims, batch.positions),
    loss_mask: new HostTensor("float32", dims, lossMask),
  };
}

Deno.test("buildLossGraph() with nextTokenLoss() declares the SFT inputs and a scalar loss", () => {
  const g = buildLossGraph(CONFIG, nextTokenLoss);
  assert.deepEqual(g.inputs.slice(0, 4).map((v) => v.name), [
    "input_ids",
    "attention_mask",
    "position_ids",
    "model.embed_tokens.weight",
  ]);
  assert.ok(g.inputs.some((v) => v.name === "loss_mask"));
  assert.deepEqual(g.outputs.map((v) => [v.name, v.shape]), [["loss", []]]);
});

Deno.test("a tiny policy trained through the train-step graph memorises its sequences", async () => {
  const policy = Policy.create(CONFIG, initWeights(CONFIG, { seed: 1 }));
  const step = policyTrainStep(CONFIG, nextTokenLoss, { weightDecay: 0 });
  assert.deepEqual(step.data, ["input_ids", "attention_mask", "position_ids", "loss_mask"]);
  const trainer = await trainerFor(policy, step);
  const data = trainingBatch();
  const losses: number[] = [];
  for (let i = 0; i < 120; i++) losses.push((await trainer.step(data, { lr: 5e-3 })).loss);
  assert.ok(losses[0] > 2.5, `the untrained loss is about ln 20 ≈ 3.0, got ${losses[0]}`);
  assert.ok(losses.at(-1)! < 0.05, `loss after 120 steps: ${losses.at(-1)}`);

  // The trained weights, back in a policy, regenerate every continuation greedily.
  policy.setWeights(await trainedWeights(trainer, CONFIG));
  const out = await generate(
    policy,
    SEQUENCES.map((s, i) => ({ prompt: s.slice(0, PROMPT), problem: i, sample: 0 })),
    { seed: 0, maxNewTokens: 12, padId: PAD, eosId: EOS, temperature: 0 },
  );
  assert.deepEqual(out.map((c) => c.tokens), SEQUENCES.map((s) => s.slice(PROMPT)));
  await trainer.release();
  await policy.release();
});
