import assert from "node:assert/strict";
import { chosenLogProb } from "../../kernels/fused.ts";
import type { Value } from "../../kernels/ir.ts";
import {
  initWeights,
  Policy,
  policyTrainStep,
  StaleWeightsError,
  trainedWeights,
} from "../../kernels/policy.ts";
import {
  completionLogprobsAsOld,
  cutColumns,
  PolicyTrainer,
  responseArray,
  responseValues,
  rolloutBatch,
  rolloutFeeds,
  rowRanges,
  scoreResponses,
  sliceRows,
  takeRows,
  trimRows,
} from "../../kernels/rollout.ts";
import { generate, type SampleRequest } from "../../kernels/sampling.ts";
import type { HostTensor } from "../../kernels/session.ts";
import { type LossInputs, qwen2ConfigFromHF } from "../../kernels/transformer.ts";

const CONFIG = qwen2ConfigFromHF({
  vocab_size: 20,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 48,
});
const [PAD, BOS, EOS] = [0, 1, 2];
/** Large weights, so the random model's distributions are peaked and EOS appears. */
const WEIGHTS = initWeights(CONFIG, { seed: 5, std: 0.25 });

/** 10 prompts of 2 … 7 tokens. */
const REQUESTS: SampleRequest[] = Array.from({ length: 10 }, (_, i) => ({
  prompt: [BOS, ...Array.from({ length: 1 + (i % 6) }, (_, k) => 3 + ((i * 7 + k * 5) % 17))],
  problem: i,
  sample: 0,
}));

const PROMPTS = [[BOS, 5, 6], [BOS, 7], [BOS, 3, 4, 5]];
const COMPLETIONS = [[8, EOS], [9, 9, 9, EOS], []];

Deno.test("rolloutBatch() right-pads prompt + completion and masks the predictions of completion tokens", () => {
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  assert.deepEqual([r.batch.batch, r.batch.length], [3, 6]);
  assert.deepEqual([...r.batch.ids], [1, 5, 6, 8, 2, 0, 1, 7, 9, 9, 9, 2, 1, 3, 4, 5, 0, 0]);
  assert.deepEqual([...r.batch.mask], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
  assert.deepEqual([...r.batch.positions], [0, 1, 2, 3, 4, 0, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 0]);
  // [B, T−1]: column t predicts token t+1.
  assert.deepEqual([...r.responseMask], [0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
  assert.deepEqual([...r.promptLengths], [3, 2, 4]);
  assert.deepEqual([...r.responseLengths], [2, 4, 0]);
  // The mask is 1 exactly where the predicted token (ids[t + 1]) is a completion token.
  const T = r.batch.length;
  for (let i = 0; i < 3; i++) {
    for (let t = 0; t < T - 1; t++) {
      const k = t + 1 - r.promptLengths[i]; // index of the predicted token in the completion
      const isCompletion = k >= 0 && k < COMPLETIONS[i].length;
      assert.equal(r.responseMask[i * (T - 1) + t], isCompletion ? 1 : 0, `row ${i}, t ${t}`);
      if (isCompletion) assert.equal(r.batch.ids[i * T + t + 1], COMPLETIONS[i][k]);
    }
  }
  // An EOS cut and a minimum length.
  const cut = rolloutBatch([[BOS, 5]], [[8, EOS, 7, 7]], { padId: PAD, eosId: EOS, length: 6 });
  assert.deepEqual([...cut.batch.ids], [1, 5, 8, 2, 0, 0]);
  assert.deepEqual([...cut.responseMask], [0, 1, 1, 0, 0]);
  assert.throws(() => rolloutBatch([[BOS], []], [[3], [4]], { padId: PAD }), /prompt 1 is empty/);
  assert.throws(() => rolloutBatch([[BOS]], [], { padId: PAD }), /1 prompts but 0 completions/);
  assert.throws(
    () => rolloutBatch([[BOS]], [[3, -1]], { padId: PAD }),
    /row 0 has token id -1 at 2; expected an integer ≥ 0/,
  );
});

Deno.test("responseValues() and responseArray() invert each other on the [B, T−1] layout", () => {
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  const values = Float32Array.from({ length: 15 }, (_, i) => i);
  const rows = responseValues(r, values);
  assert.deepEqual(rows.map((v) => [...v]), [[2, 3], [6, 7, 8, 9], []]);
  const back = responseArray(r, rows);
  assert.deepEqual([...back], [...values].map((v, i) => v * r.responseMask[i]));
  const old = completionLogprobsAsOld(r, [{ logprobs: [-1, -2] }, { logprobs: [-3, -4, -5, -6] }, {
    logprobs: [],
  }]);
  assert.deepEqual([...old], [0, 0, -1, -2, 0, 0, -3, -4, -5, -6, 0, 0, 0, 0, 0]);
  assert.throws(() => responseValues(r, new Float32Array(18)), /expected B × \(T − 1\) = 3 × 5/);
  assert.throws(
    () => responseArray(r, [[1, 2], [1], []]),
    /row 1 has 1 values; expected 4 \(its completion length\)/,
  );
});

Deno.test("sliceRows() and takeRows() cut micro-batches that match a rollout of those rows", () => {
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  const part = sliceRows(r, 1, 3);
  const alone = rolloutBatch(PROMPTS.slice(1), COMPLETIONS.slice(1), {
    padId: PAD,
    length: r.batch.length,
  });
  assert.deepEqual(
    [part.batch.ids, part.batch.mask, part.batch.positions, part.responseMask].map((a) => [...a]),
    [alone.batch.ids, alone.batch.mask, alone.batch.positions, alone.responseMask].map((a) => [
      ...a,
    ]),
  );
  assert.deepEqual([...part.promptLengths, ...part.responseLengths], [2, 4, 4, 0]);
  assert.deepEqual([...takeRows(Float32Array.of(10, 20, 30), 3, 1, 3)], [20, 30]);
  assert.deepEqual(rowRanges(5, 2), [[0, 2], [2, 4], [4, 5]]);
  const feeds = rolloutFeeds(part);
  assert.deepEqual(
    Object.entries(feeds).map(([name, t]) => [name, t.dtype, t.dims]),
    [
      ["input_ids", "int32", [2, 6]],
      ["attention_mask", "int32", [2, 6]],
      ["position_ids", "int32", [2, 6]],
      ["response_mask", "float32", [2, 5]],
    ],
  );
  assert.throws(() => sliceRows(r, 2, 2), /rows \[2, 2\); expected 0 ≤ start < end ≤ 3/);
});

Deno.test("scoreResponses() gives the score graph's response scores, zero elsewhere, for any micro-batch size", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const prompts = REQUESTS.slice(0, 5).map((q) => [...q.prompt]);
  const completions = prompts.map((_, i) => Array.from({ length: 1 + 2 * i }, (_, k) => 3 + k));
  const r = rolloutBatch(prompts, completions, { padId: PAD });
  const full = await policy.score(r.batch, { temperature: 0.7 });
  for (const microBatchSize of [1, 2, 8]) {
    const s = await scoreResponses(policy, r, { temperature: 0.7, microBatchSize });
    let d = 0;
    r.responseMask.forEach((m, i) => {
      d = Math.max(d, Math.abs(s.logp[i] - m * full.logprobs[i]));
      d = Math.max(d, Math.abs(s.entropy[i] - m * full.entropy[i]));
      if (m === 0) assert.ok(s.logp[i] === 0 && s.entropy[i] === 0);
    });
    assert.ok(d < 1e-5, `micro-batch ${microBatchSize}: max |Δ| = ${d}`);
  }
  await policy.release();
});

/** Sampling settings whose log-probs are compared; top-k/top-p truncate after the log-prob. */
const SAMPLERS = [
  { temperature: 1 },
  { temperature: 0.7 },
  { temperature: 1, topP: 0.9 },
  { temperature: 0.7, topK: 5 },
];
for (const sampler of SAMPLERS) {
  Deno.test(`completionLogprobsAsOld() equals the score graph's recomputation with ${JSON.stringify(sampler)}`, async () => {
    const policy = Policy.create(CONFIG, WEIGHTS);
    const options = { seed: 7, maxNewTokens: 12, padId: PAD, eosId: EOS, ...sampler };
    const out = await generate(policy, REQUESTS, options);
    assert.ok(out.some((c) => c.finish === "eos") && out.some((c) => c.finish === "length"));
    const prompts = REQUESTS.map((q) => q.prompt);
    const r = rolloutBatch(prompts, out.map((c) => c.tokens), { padId: PAD });
    const old = completionLogprobsAsOld(r, out);
    const { temperature } = sampler;
    const { logp } = await scoreResponses(policy, r, { temperature, microBatchSize: 4 });
    // Measured max |Δ| ≤ 2e-6 (host float64 softmax of decode logits vs the fused score graph).
    const d = Math.max(...old.map((x, i) => Math.abs(x - logp[i])));
    assert.ok(d < 1e-4, `max |Δ logprob| = ${d}`);
    await policy.release();
  });
}

// ----- PolicyTrainer ------------------------------------------------------------------------------

/** Response SFT: −Σ m · log p(token) / max(Σ m, 1), over the rollout's `response_mask`. */
function responseNll({ b, logits, targets }: LossInputs): Value {
  const m = b.input("response_mask", "float32", ["batch_size", "predictions"]); // [B, T−1]
  const logp = chosenLogProb(b, logits, targets); //                                [B, T−1]
  const total = b.reduceSum(b.mul(logp, m), [0, 1], false);
  return b.neg(b.div(total, b.max(b.reduceSum(m, [0, 1], false), b.scalar(1))));
}

const SAMPLING = { seed: 3, maxNewTokens: 8, padId: PAD, eosId: EOS, temperature: 1 };

Deno.test("PolicyTrainer.step() moves the policy onto the trained weights: generate and score follow", async () => {
  const pt = await PolicyTrainer.create(
    Policy.create(CONFIG, WEIGHTS),
    policyTrainStep(CONFIG, responseNll, { weightDecay: 0 }),
  );
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  const before = await pt.scoreResponses(r);
  const sampledBefore = await pt.generate(REQUESTS, SAMPLING);
  const metrics = await pt.step(rolloutFeeds(r), { lr: 1e-2 });
  assert.ok(metrics.applied);
  assert.deepEqual([pt.version, pt.policy.version], [1, 1]);
  // On the CPU the policy reads the trainer's state arrays themselves.
  for (const [name, w] of pt.policy.weights) {
    assert.equal(w, (pt.trainer.stateTensors.get(name) as HostTensor).data, name);
  }
  const after = await pt.scoreResponses(r);
  const sampledAfter = await pt.generate(REQUESTS, SAMPLING);
  // The step raised the log-probs of the response tokens it was trained on.
  const mean = (a: Float32Array) => a.reduce((s, x) => s + x, 0) / 6;
  assert.ok(mean(after.logp) > mean(before.logp), `${mean(after.logp)} vs ${mean(before.logp)}`);
  assert.notDeepEqual(sampledAfter.map((c) => c.logprobs), sampledBefore.map((c) => c.logprobs));
  // Exactly what a fresh policy on the trained weights computes.
  const fresh = Policy.create(CONFIG, await trainedWeights(pt.trainer, CONFIG));
  assert.deepEqual(await scoreResponses(fresh, r), after);
  assert.deepEqual(await generate(fresh, REQUESTS, SAMPLING), sampledAfter);
  await fresh.release();
  await pt.release();
});

Deno.test("a policy bound to its trainer refuses to run once the trainer is ahead of its weights", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const pt = await PolicyTrainer.create(
    policy,
    policyTrainStep(CONFIG, responseNll, { weightDecay: 0 }),
  );
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  await pt.trainer.step(rolloutFeeds(r), { lr: 1e-2 }); // bypasses the sync
  const stale = /weights are version 0 but its trainer is at version 1/;
  await assert.rejects(() => pt.generate(REQUESTS, SAMPLING), StaleWeightsError);
  await assert.rejects(() => generate(policy, REQUESTS, SAMPLING), stale);
  await assert.rejects(() => pt.scoreResponses(r), stale);
  // Binding again takes the trainer's weights; weights set without a version never match.
  const again = await PolicyTrainer.bind(policy, pt.trainer);
  assert.equal((await again.generate(REQUESTS.slice(0, 2), SAMPLING)).length, 2);
  policy.setWeights(WEIGHTS);
  await assert.rejects(
    () => policy.score(r.batch),
    /weights are version undefined but its trainer is at version 1/,
  );
  await pt.release();
});

Deno.test("PolicyTrainer with a webgpu trainer downloads the parameters after each step", async () => {
  const pt = await PolicyTrainer.create(
    Policy.create(CONFIG, WEIGHTS),
    policyTrainStep(CONFIG, responseNll, { weightDecay: 0 }),
    { device: "webgpu", threads: 2 },
  );
  const r = rolloutBatch(PROMPTS, COMPLETIONS, { padId: PAD });
  const before = await pt.scoreResponses(r);
  await pt.step(rolloutFeeds(r), { lr: 1e-2 });
  assert.ok(pt.trainer.resident);
  assert.equal(pt.policy.version, 1);
  const trained = await trainedWeights(pt.trainer, CONFIG);
  for (const [name, w] of pt.policy.weights) assert.deepEqual(w, trained.get(name), name);
  assert.notDeepEqual(await pt.scoreResponses(r), before);
  await pt.release();
});

Deno.test("trimRows() cuts a micro-batch to its own longest row, keeps a minimum width, and keeps the response mask aligned", () => {
  const rollout = rolloutBatch([[1, 5], [1, 6, 7, 8], [1]], [[2], [9, 9, 2], [3, 2]], { padId: 0 });
  assert.equal(rollout.batch.length, 7);
  const first = trimRows(rollout, 0, 1);
  assert.equal(first.batch.length, 3);
  assert.deepEqual([...first.batch.ids], [1, 5, 2]);
  assert.deepEqual([...first.responseMask], [0, 1]);
  const wide = trimRows(rollout, 0, 1, 5);
  assert.equal(wide.batch.length, 5);
  assert.deepEqual([...wide.batch.ids], [1, 5, 2, 0, 0]);
  assert.deepEqual([...wide.responseMask], [0, 1, 0, 0]);
  const last = trimRows(rollout, 2, 3);
  assert.deepEqual([...last.batch.ids], [1, 3, 2]);
  assert.deepEqual([...last.responseMask], [1, 1]);
  assert.equal(trimRows(rollout, 1, 2).batch.length, 7, "the longest row: nothing to cut");
  assert.throws(() => trimRows(rollout, 0, 1, 8), /minLength 8 exceeds the rollout's length 7/);
  assert.deepEqual([...cutColumns(Float32Array.from([1, 2, 3, 4, 5, 6]), 3, 2)], [1, 2, 4, 5]);
});
