/**
 * The output head in chunks of positions (kernels/_chunk_head.ts) computes what the whole
 * logits compute: the same log-probs and entropies, and a loss on them with the same value and
 * the same gradients, alone and inside the real Qwen2 loss and score graphs.
 */

import assert from "node:assert/strict";
import { grad } from "../../kernels/autodiff.ts";
import { GraphBuilder } from "../../kernels/builder.ts";
import { logProbAndEntropy } from "../../kernels/fused.ts";
import type { Graph, Value } from "../../kernels/ir.ts";
import { policyLoss } from "../../kernels/losses.ts";
import { initWeights, padBatch, Policy } from "../../kernels/policy.ts";
import { compile, HostTensor } from "../../kernels/session.ts";
import { buildLossGraph, qwen2ConfigFromHF } from "../../kernels/transformer.ts";
import {
  chunkedHead,
  type HeadChunking,
  lossChunking,
  scoreChunking,
} from "../../kernels/_chunk_head.ts";
import { normalStream, randomNormal } from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

const [B, W, D, V] = [3, 7, 8, 50];
const TOL = { atol: 2e-5, rtol: 1e-4 };

/** A head graph: inputs h [B, W, D], w [V, D], t [B, W]; `body` adds the outputs. */
function headGraph(body: (b: GraphBuilder, h: Value, w: Value, t: Value) => void): Graph {
  const b = new GraphBuilder("head");
  const h = b.input("h", "float32", ["B", "W", D]);
  const w = b.input("w", "float32", [V, D]);
  const t = b.input("t", "int32", ["B", "W"]);
  body(b, h, w, t);
  return b.build();
}

function headFeeds(seed: number): Record<string, HostTensor> {
  const next = normalStream(seed);
  return {
    h: new HostTensor("float32", [B, W, D], Float32Array.from(randomNormal([B, W, D], next))),
    w: new HostTensor("float32", [V, D], Float32Array.from(randomNormal([V, D], next))),
    t: new HostTensor("int32", [B, W], Int32Array.from({ length: B * W }, (_, i) => (i * 7) % V)),
  };
}

/** A loss that is non-linear in both values, so both of their gradients matter. */
function lossOf(b: GraphBuilder, logp: Value, entropy: Value): Value {
  const sq = b.mul(logp, logp);
  const h = b.mul(entropy, b.exp(b.neg(entropy)));
  return b.reduceSum(b.add(b.mul(sq, b.scalar(0.3)), h), [0, 1], false);
}

async function run(graph: Graph, feeds: Record<string, HostTensor>) {
  const program = await compile(graph, { threads: 2 });
  const out = await program.run(feeds);
  await program.release();
  return out;
}

for (const temperature of [1, 0.7]) {
  Deno.test(`chunkedHead() gives the log-probs and entropies of the whole logits, at temperature ${temperature}, for 1, 3 and W chunks`, async () => {
    const feeds = headFeeds(1);
    const whole = await run(
      headGraph((b, h, w, t) => {
        const z = b.matmul(h, b.transpose(w, [1, 0]));
        const v = logProbAndEntropy(b, z, t, { temperature });
        b.output(v.logp, "logp");
        b.output(v.entropy, "entropy");
      }),
      feeds,
    );
    for (const chunks of [1, 3, W]) {
      const out = await run(
        headGraph((b, h, w, t) => {
          const head = chunkedHead(b, { hidden: h, weight: w, targets: t }, {
            chunking: { chunks },
            temperature,
          });
          b.output(head.logp, "logp");
          b.output(head.entropy, "entropy");
        }),
        feeds,
      );
      for (const name of ["logp", "entropy"]) {
        assertAllClose(
          out.host(name).float32(),
          whole.host(name).float32(),
          `${name}/${chunks}`,
          TOL,
        );
      }
    }
  });

  Deno.test(`a loss through chunkedHead().finish() has the value and the hidden and weight gradients of the loss on whole logits, at temperature ${temperature}`, async () => {
    const feeds = headFeeds(2);
    const whole = grad(
      headGraph((b, h, w, t) => {
        const v = logProbAndEntropy(b, b.matmul(h, b.transpose(w, [1, 0])), t, { temperature });
        b.output(lossOf(b, v.logp, v.entropy), "loss");
      }),
      "loss",
      ["h", "w"],
    );
    const expected = await run(whole, feeds);
    for (const chunks of [1, 4]) {
      const chunked = grad(
        headGraph((b, h, w, t) => {
          const head = chunkedHead(b, { hidden: h, weight: w, targets: t }, {
            chunking: { chunks },
            temperature,
          });
          b.output(head.finish(lossOf(b, head.logp, head.entropy)), "loss");
        }),
        "loss",
        ["h", "w"],
      );
      const out = await run(chunked, feeds);
      assertAllClose([out.scalar("loss")], [expected.scalar("loss")], `loss/${chunks}`, TOL);
      for (const name of ["grad.h", "grad.w"]) {
        assertAllClose(out.host(name).float32(), expected.host(name).float32(), name, TOL);
      }
    }
  });
}

// ----- inside the real graphs -----------------------------------------------------------------

const [ROWS, T] = [3, 9];

function modelConfig(tie: boolean) {
  return qwen2ConfigFromHF({
    vocab_size: 64,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 32,
    tie_word_embeddings: tie,
  });
}

/** Feeds for every input of a policy loss graph: a batch, random loss inputs, the weights. */
function lossFeeds(graph: Graph, weights: ReadonlyMap<string, Float32Array>) {
  const batch = padBatch(
    Array.from(
      { length: ROWS },
      (_, r) => Array.from({ length: T - r }, (_, i) => 1 + (r * 5 + i * 3) % 60),
    ),
    { padId: 0, side: "right" },
  );
  const next = normalStream(9);
  const perToken = (scale: number, shift: number) =>
    Float32Array.from(randomNormal([ROWS, T - 1], next), (x) => shift + scale * x);
  const mask = Float32Array.from(
    { length: ROWS * (T - 1) },
    (_, i) =>
      i % (T - 1) >= 2 && batch.mask[Math.floor(i / (T - 1)) * T + (i % (T - 1)) + 1] ? 1 : 0,
  );
  const data: Record<string, Float32Array> = {
    old_logp: perToken(0.3, -3),
    ref_logp: perToken(0.3, -3),
    old_entropy: perToken(0.2, 3),
    response_mask: mask,
    clip_cov_uniforms: Float32Array.from(
      { length: ROWS * (T - 1) },
      (_, i) => ((i * 37) % 100) / 100,
    ),
  };
  const feeds: Record<string, HostTensor> = {};
  for (const v of graph.inputs) {
    const n = v.name;
    if (weights.has(n)) feeds[n] = new HostTensor("float32", v.shape as number[], weights.get(n)!);
    else if (n === "input_ids") feeds[n] = new HostTensor("int32", [ROWS, T], batch.ids);
    else if (n === "attention_mask") feeds[n] = new HostTensor("int32", [ROWS, T], batch.mask);
    else if (n === "position_ids") feeds[n] = new HostTensor("int32", [ROWS, T], batch.positions);
    else if (n === "advantages") {
      feeds[n] = new HostTensor("float32", [ROWS], Float32Array.from([1, -0.5, 0.25]));
    } else if (n === "loss_scale") feeds[n] = new HostTensor("float32", [], Float32Array.from([1]));
    else if (data[n]) feeds[n] = new HostTensor("float32", [ROWS, T - 1], data[n]);
    else throw new Error(`no feed for input ${n}`);
  }
  return feeds;
}

const CASES = [
  { method: "sent", tie: true, temperature: 1 },
  { method: "entropy_bonus", tie: false, temperature: 0.7 },
];

for (const { method, tie, temperature } of CASES) {
  Deno.test(`policyLoss("${method}") in a Qwen2 loss graph with the head in 3 chunks gives the loss, metrics and weight gradients of the unchunked graph (${tie ? "tied" : "separate"} head)`, async () => {
    const config = modelConfig(tie);
    const weights = initWeights(config, { seed: 4, std: 0.2 });
    const names = [...weights.keys()];
    const loss = policyLoss(method, { temperature });
    const build = (chunking: HeadChunking | null) =>
      grad(buildLossGraph(config, loss, { chunking }), "loss", names);
    const whole = build(null);
    const chunked = build({ chunks: 3 });
    const feeds = lossFeeds(whole, weights);
    const expected = await run(whole, feeds);
    const out = await run(chunked, feeds);
    for (const name of whole.outputs.map((v) => v.name)) {
      const tol = name.startsWith("grad.") ? { atol: 1e-5, rtol: 1e-3 } : TOL;
      assertAllClose(out.host(name).float32(), expected.host(name).float32(), name, tol);
    }
    // The chunked graph never multiplies the hidden states of the whole batch by the head
    // (a chunk's product has the sliced, unnamed dims).
    const wholeLogits = (g: Graph) =>
      g.nodes.filter((n) =>
        n.op === "MatMul" && n.outputs[0].shape.at(-1) === config.vocabSize &&
        n.outputs[0].shape[0] === "batch_size"
      ).length;
    assert.equal(wholeLogits(whole), 1);
    assert.equal(wholeLogits(chunked), 0);
  });
}

Deno.test("Policy.score() with the head in chunks gives the scores of whole logits", async () => {
  const config = modelConfig(false);
  const policy = Policy.create(config, initWeights(config, { seed: 5, std: 0.2 }), { threads: 2 });
  const batch = padBatch([[1, 5, 9, 3, 7, 11, 2], [1, 8, 6], [1, 4, 4, 4, 4]], { padId: 0 });
  const whole = await policy.score(batch, { chunking: null, temperature: 0.8 });
  for (const chunks of [2, 5]) {
    const out = await policy.score(batch, { chunking: { chunks }, temperature: 0.8 });
    assertAllClose(out.logprobs, whole.logprobs, `logprobs/${chunks}`, TOL);
    assertAllClose(out.entropy, whole.entropy, `entropy/${chunks}`, TOL);
  }
  await policy.release();
});

Deno.test("the default chunking: none for small vocabularies; at Qwen2's 151,936 ids at most 27 positions a score chunk and 32 chunks a loss graph", () => {
  assert.equal(scoreChunking(28, 127), null);
  assert.equal(lossChunking(4000, 128), null);
  assert.deepEqual(scoreChunking(151936, 2047), { chunks: 128 });
  assert.deepEqual(scoreChunking(151936, 20), { chunks: 1 });
  assert.deepEqual(lossChunking(151936, 131072), { chunks: 32 });
  for (const width of [1, 2, 5, 26, 27, 28, 100, 2047, 4095]) {
    const plan = scoreChunking(151936, width);
    if (plan === null) continue;
    assert.ok(plan.chunks <= width, `${width}: ${plan.chunks} chunks`);
    assert.ok(Math.ceil(width / plan.chunks) <= 27, `${width}: ${plan.chunks} chunks`);
  }
});
