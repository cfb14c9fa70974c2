import assert from "node:assert/strict";
import { initWeights, Policy } from "../../kernels/policy.ts";
import { generate, type SampleRequest, sampleToken } from "../../kernels/sampling.ts";
import { qwen2ConfigFromHF } from "../../kernels/transformer.ts";

const CONFIG = qwen2ConfigFromHF({
  vocab_size: 29,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 96,
});
const EOS = 2;
/** Large weights, so the random model's distributions are peaked and EOS appears often. */
const WEIGHTS = initWeights(CONFIG, { seed: 3, std: 0.25 });

/** 64 prompts of lengths 3 … 15 over 9 problems with several samples each. */
const REQUESTS: SampleRequest[] = Array.from({ length: 64 }, (_, i) => ({
  prompt: [
    1,
    ...Array.from({ length: 2 + ((i * 7) % 13) }, (_, k) => 3 + ((i * 31 + k * 17) % 26)),
  ],
  problem: `problem-${i % 9}`,
  sample: Math.floor(i / 9),
}));

const OPTIONS = { seed: 42, maxNewTokens: 40, padId: 0, eosId: EOS, temperature: 1, topP: 0.95 };

Deno.test("generate() gives identical completions for batch sizes 1, 7 and 64 and any order", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const big = await generate(policy, REQUESTS, { ...OPTIONS, batchSize: 64 });
  const seven = await generate(policy, REQUESTS, { ...OPTIONS, batchSize: 7 });
  const one = await generate(policy, REQUESTS, { ...OPTIONS, batchSize: 1 });
  const reversed = (await generate(policy, [...REQUESTS].reverse(), OPTIONS)).reverse();
  const tokens = (cs: typeof big) => cs.map((c) => c.tokens.join(","));
  assert.deepEqual(tokens(seven), tokens(big));
  assert.deepEqual(tokens(one), tokens(big));
  assert.deepEqual(tokens(reversed), tokens(big));
  // The batch exercises both stops and the slot cache's compaction and growth.
  assert.ok(big.some((c) => c.finish === "eos") && big.some((c) => c.finish === "length"));
  for (const c of big) {
    assert.equal(c.tokens.length, c.logprobs.length);
    assert.ok(c.tokens.length <= 40);
    assert.equal(c.finish === "eos", c.tokens.at(-1) === EOS);
    assert.equal(c.tokens.indexOf(EOS), c.finish === "eos" ? c.tokens.length - 1 : -1);
  }
  // A different seed or sample index gives a different stream.
  const other = await generate(policy, REQUESTS.slice(0, 8), { ...OPTIONS, seed: 43 });
  assert.notDeepEqual(tokens(other), tokens(big.slice(0, 8)));
  await policy.release();
});

Deno.test("generate() with the Optimum-style cache gives the slot cache's completions on cpu", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const some = REQUESTS.slice(0, 12);
  const slots = await generate(policy, some, { ...OPTIONS, cache: "slots" });
  const resident = await generate(policy, some, { ...OPTIONS, cache: "resident" });
  assert.deepEqual(resident.map((c) => c.tokens), slots.map((c) => c.tokens));
  const d = Math.max(
    ...slots.flatMap((c, i) => c.logprobs.map((l, k) => Math.abs(l - resident[i].logprobs[k]))),
  );
  assert.ok(d < 1e-4, `max |Δ logprob| = ${d}`);
  await policy.release();
});

Deno.test("generate() stops at any id of eosIds, as at eosId, and the same stream runs on past others", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const some = REQUESTS.slice(0, 24);
  const open = await generate(policy, some, { ...OPTIONS, eosId: undefined });
  const stops = [EOS, 5];
  const both = await generate(policy, some, { ...OPTIONS, eosId: undefined, eosIds: stops });
  const mixed = await generate(policy, some, { ...OPTIONS, eosIds: [5] });
  for (const [i, c] of both.entries()) {
    const cut = open[i].tokens.findIndex((t) => stops.includes(t));
    // Each row is the unstopped row cut right after its first stop id.
    assert.deepEqual(c.tokens, cut < 0 ? open[i].tokens : open[i].tokens.slice(0, cut + 1));
    assert.equal(c.finish, cut < 0 ? open[i].finish : "eos");
    assert.deepEqual(mixed[i].tokens, c.tokens);
  }
  assert.ok(both.some((c) => c.tokens.at(-1) === 5) && both.some((c) => c.tokens.at(-1) === EOS));
  await policy.release();
});

Deno.test("generate() at temperature 0 is greedy and stops at maxNewTokens", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const req = [{ prompt: [1, 5, 9], problem: 0, sample: 0 }];
  const a = await generate(policy, req, { ...OPTIONS, temperature: 0, maxNewTokens: 5, eosId: -1 });
  const b = await generate(policy, req, {
    ...OPTIONS,
    temperature: 0,
    maxNewTokens: 5,
    seed: 9,
    eosId: -1,
  });
  assert.deepEqual(a[0].tokens, b[0].tokens, "greedy decoding ignores the seed");
  assert.equal(a[0].tokens.length, 5);
  assert.equal(a[0].finish, "length");
  await policy.release();
});

Deno.test("generate() clamps a budget to the context and ends such completions with finish length", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const long = { prompt: Array(90).fill(3), problem: 0, sample: 0 };
  const full = { prompt: Array(96).fill(3), problem: 1, sample: 0 };
  const options = { ...OPTIONS, eosId: -1, maxNewTokens: 40 };
  const out = await generate(policy, [long, full, REQUESTS[0]], options);
  // 90 prompt tokens leave positions 90 … 95 for 6 fed tokens, then one more is sampled.
  assert.deepEqual(out.map((c) => c.tokens.length), [7, 1, 40]);
  assert.ok(out.every((c) => c.finish === "length"));
  await policy.release();
});

Deno.test("generate() takes each request's maxNewTokens over the options' value, on both caches", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  const budgets = [1, 3, undefined, 17, 2, 33];
  const requests = REQUESTS.slice(0, 6).map((r, i) => ({ ...r, maxNewTokens: budgets[i] }));
  const options = { ...OPTIONS, eosId: -1, maxNewTokens: 9 };
  for (const cache of ["slots", "resident"] as const) {
    const out = await generate(policy, requests, { ...options, cache });
    assert.deepEqual(out.map((c) => c.tokens.length), [1, 3, 9, 17, 2, 33], cache);
    assert.ok(out.every((c) => c.finish === "length" && c.logprobs.length === c.tokens.length));
    // A budget only stops a row: its tokens are the prefix of a longer run's.
    const alone = await generate(policy, [{ ...requests[3], maxNewTokens: 33 }], options);
    assert.deepEqual(out[3].tokens, alone[0].tokens.slice(0, 17));
  }
  await policy.release();
});

Deno.test("generate() refuses a prompt that alone exceeds max_position_embeddings, naming the request", async () => {
  const policy = Policy.create(CONFIG, WEIGHTS);
  await assert.rejects(
    () =>
      generate(
        policy,
        [REQUESTS[0], { prompt: Array(97).fill(3), problem: 0, sample: 0 }],
        OPTIONS,
      ),
    /request 1 has a prompt of 97 tokens, more than max_position_embeddings 96/,
  );
  await assert.rejects(
    () => generate(policy, [{ ...REQUESTS[0], maxNewTokens: 0 }], OPTIONS),
    /request 0 has maxNewTokens 0; expected an integer ≥ 1/,
  );
  await assert.rejects(
    () => generate(policy, REQUESTS.slice(0, 1), { ...OPTIONS, topP: 0 }),
    /topP is 0; expected a number in \(0, 1\]/,
  );
  await policy.release();
});

// ----- token choice -------------------------------------------------------------------------------

const LOGITS = Float32Array.from([1, 3, 2, 0.5, 3]); // ids 1 and 4 tie for the top

Deno.test("sampleToken() walks the CDF in id order and reports log-probs before truncation", () => {
  const p = Array.from(LOGITS, (x) => Math.exp(x));
  const z = p.reduce((a, b) => a + b, 0);
  // u just below the end of id 0's mass picks 0, just above picks 1.
  assert.equal(sampleToken(LOGITS, p[0] / z - 1e-9, {}).token, 0);
  assert.equal(sampleToken(LOGITS, p[0] / z + 1e-9, {}).token, 1);
  const { token, logprob } = sampleToken(LOGITS, 0.999999, {});
  assert.equal(token, 4);
  assert.ok(Math.abs(logprob - Math.log(p[4] / z)) < 1e-12);
});

Deno.test("sampleToken() applies temperature, top-k (ties to the lower id) and then top-p", () => {
  assert.equal(sampleToken(LOGITS, 0.99, { temperature: 0 }).token, 1, "argmax takes the lower id");
  assert.equal(sampleToken(LOGITS, 0.99, { topK: 1 }).token, 1);
  // top-k 2 keeps ids 1 and 4 (equal mass): u < 0.5 → 1, else 4.
  assert.equal(sampleToken(LOGITS, 0.49, { topK: 2 }).token, 1);
  assert.equal(sampleToken(LOGITS, 0.51, { topK: 2 }).token, 4);
  // top-p 0.5 over {1, 4, 2, 0, 3}: id 1 alone has mass 0.36 < 0.5, with 4 it reaches it.
  for (const u of [0.1, 0.6, 0.99]) {
    assert.ok([1, 4].includes(sampleToken(LOGITS, u, { topP: 0.5 }).token));
  }
  // A tiny temperature concentrates everything on the tied top pair.
  assert.ok([1, 4].includes(sampleToken(LOGITS, 0.3, { temperature: 0.01 }).token));
  // Frequencies over a grid of u follow the softmax.
  const counts = new Array(5).fill(0);
  for (let i = 0; i < 10000; i++) counts[sampleToken(LOGITS, (i + 0.5) / 10000, {}).token]++;
  const z = LOGITS.reduce((a, x) => a + Math.exp(x), 0);
  counts.forEach((n, id) => assert.ok(Math.abs(n / 10000 - Math.exp(LOGITS[id]) / z) < 2e-4));
});

Deno.test("generate() on webgpu keeps the cache on the GPU and matches the CPU's greedy tokens", async () => {
  const cpu = Policy.create(CONFIG, WEIGHTS);
  const gpu = Policy.create(CONFIG, WEIGHTS, { device: "webgpu" });
  const some = REQUESTS.slice(0, 6);
  const options = { ...OPTIONS, temperature: 0, maxNewTokens: 10 };
  const a = await generate(cpu, some, options);
  const b = await generate(gpu, some, options);
  assert.deepEqual(b.map((c) => c.tokens), a.map((c) => c.tokens));
  // SwiftShader's float math (sin/cos in particular) differs from the CPU's in the 4th decimal.
  const d = Math.max(
    ...a.flatMap((c, i) => c.logprobs.map((l, k) => Math.abs(l - b[i].logprobs[k]))),
  );
  assert.ok(d < 1e-2, `max |Δ logprob| = ${d}`);
  await cpu.release();
  await gpu.release();
});
