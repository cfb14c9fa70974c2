/**
 * Attention in blocks of query positions (kernels/transformer.ts `blockedAttention`), the score
 * graph's way of not holding a long row's [H, T, T] scores: the same log-probs and entropies as
 * whole attention on random weights and padded batches, the default block counts, and the
 * errors for block counts a length cannot take.
 */

import assert from "node:assert/strict";
import {
  buildScoreGraph,
  initWeights,
  MAX_QUERY_BLOCKS,
  padBatch,
  Policy,
  scoreQueryBlocks,
} from "../../kernels/policy.ts";
import { queryBlocksFit, qwen2ConfigFromHF, tinyPolicyConfig } from "../../kernels/transformer.ts";
import { DEEPSEEK_R1_DISTILL_QWEN_1_5B } from "../../kernels/bench_model.ts";
import { assertAllClose } from "./_numeric.ts";

/** Two query heads per key/value head, so the bias is broadcast over a real G axis. */
const CONFIG = qwen2ConfigFromHF({
  vocab_size: 40,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
});

/** Rows of 13, 6 and 9 tokens: left padding gives fully masked query rows in the first blocks. */
const ROWS = [
  [1, 5, 9, 3, 7, 11, 2, 30, 4, 4, 17, 25, 8],
  [1, 8, 6, 21, 3, 39],
  [1, 4, 4, 4, 4, 12, 13, 14, 15],
];

const TOL = { atol: 1e-5, rtol: 1e-5 };

Deno.test("Policy.score() with attention in 2, 4 and 8 query blocks gives the scores of whole attention (13 positions: uneven blocks, left padding, G = 2)", async () => {
  const policy = Policy.create(CONFIG, initWeights(CONFIG, { seed: 11, std: 0.3 }), {
    threads: 2,
  });
  const batch = padBatch(ROWS, { padId: 0 });
  assert.equal(batch.length, 13);
  for (const chunking of [null, { chunks: 3 }]) {
    const whole = await policy.score(batch, { chunking, queryBlocks: null, temperature: 0.8 });
    for (const queryBlocks of [2, 4, 8]) {
      const what = `${queryBlocks} blocks, head ${chunking ? "in chunks" : "whole"}`;
      const out = await policy.score(batch, { chunking, queryBlocks, temperature: 0.8 });
      assertAllClose(out.logprobs, whole.logprobs, `logprobs/${what}`, TOL);
      assertAllClose(out.entropy, whole.entropy, `entropy/${what}`, TOL);
    }
  }
  await policy.release();
});

Deno.test("on webgpu, attention in 16 query blocks runs and gives the scores of whole attention", async () => {
  // 16 blocks: a single 16-output Split would bind more storage buffers than a WebGPU shader may.
  const policy = Policy.create(CONFIG, initWeights(CONFIG, { seed: 11, std: 0.3 }), {
    device: "webgpu",
  });
  const batch = padBatch([[...ROWS[0], 3, 3, 3, 9, 9, 1], ROWS[1]], { padId: 0 });
  const whole = await policy.score(batch, { queryBlocks: null });
  const out = await policy.score(batch, { queryBlocks: 16 });
  assertAllClose(out.logprobs, whole.logprobs, "logprobs", TOL);
  assertAllClose(out.entropy, whole.entropy, "entropy", TOL);
  await policy.release();
});

Deno.test("buildScoreGraph() with n query blocks has n attention softmaxes per layer, one without", () => {
  const count = (queryBlocks: number, op: string) =>
    buildScoreGraph(CONFIG, { queryBlocks }).nodes.filter((n) => n.op === op).length;
  // One more softmax is the head's entropy.
  assert.equal(count(1, "Softmax"), CONFIG.numLayers + 1);
  assert.equal(count(4, "Softmax"), 4 * CONFIG.numLayers + 1);
  assert.equal(count(1, "Split"), 0);
});

Deno.test("scoreQueryBlocks(): whole attention for short rows; for DeepSeek-R1-Distill-Qwen-1.5B at 2048 positions 16 blocks of 128 queries; never an empty block", () => {
  const r1 = qwen2ConfigFromHF(DEEPSEEK_R1_DISTILL_QWEN_1_5B);
  assert.equal(scoreQueryBlocks(tinyPolicyConfig(28), 128), null);
  assert.equal(scoreQueryBlocks(r1, 512), null);
  assert.equal(scoreQueryBlocks(r1, 1024), 4);
  assert.equal(scoreQueryBlocks(r1, 2048), 16);
  assert.equal(scoreQueryBlocks(r1, 4096), MAX_QUERY_BLOCKS);
  for (const length of [683, 700, 1000, 2047, 2049, 3000, 8191, 16384]) {
    const n = scoreQueryBlocks(r1, length);
    assert.ok(n !== null && n <= MAX_QUERY_BLOCKS && queryBlocksFit(length, n), `${length}: ${n}`);
  }
  assert.deepEqual(
    [[13, 8], [8, 8], [6, 8], [12, 3], [12, 0]].map(([t, n]) => queryBlocksFit(t, n)),
    [true, true, false, false, false],
  );
});

Deno.test("a block count that is no power of two, or would leave a block empty, is refused by name", async () => {
  const policy = Policy.create(CONFIG, initWeights(CONFIG, { seed: 1 }), { threads: 1 });
  const batch = padBatch([[1, 2, 3, 4, 5, 6]], { padId: 0 });
  for (const queryBlocks of [8, 3]) {
    await assert.rejects(
      () => policy.score(batch, { queryBlocks }),
      new RegExp(
        `Policy\\.score\\(\\): queryBlocks is ${queryBlocks} at length 6; expected a power of two no larger than the length`,
      ),
    );
  }
  await policy.release();
  assert.throws(
    () => buildScoreGraph(CONFIG, { queryBlocks: 6 }),
    /queryBlocks is 6; expected a power of two \(1, 2, 4, …\)/,
  );
});
