import assert from "node:assert/strict";
import { GraphBuilder } from "../../kernels/builder.ts";
import {
  chosenLogProb,
  chosenLogProbReference,
  klK3,
  klK3Reference,
  tokenEntropy,
  tokenEntropyReference,
} from "../../kernels/fused.ts";
import { compile, hostTensor } from "../../kernels/session.ts";
import { normalStream, randomNormal } from "../../kernels/_toy_models.ts";
import { assertAllClose } from "./_numeric.ts";

/** Logits graph over [B,T,V] with all three fused pieces as outputs. */
function scoreGraph(vocab: number, temperature: number) {
  const b = new GraphBuilder("score");
  const logits = b.input("logits", "float32", ["B", "T", vocab]); //  [B,T,V]
  const tokens = b.input("tokens", "int64", ["B", "T"]); //          [B,T]
  const ref = b.input("ref", "float32", ["B", "T"]); //              [B,T]
  const logp = chosenLogProb(b, logits, tokens, { temperature });
  b.output(logp, "logp");
  b.output(tokenEntropy(b, logits, { temperature }), "entropy");
  b.output(klK3(b, logp, ref), "k3");
  return b.build();
}

async function runScore(
  logits: Float32Array,
  tokens: number[],
  ref: number[],
  dims: { B: number; T: number; V: number },
  temperature = 1,
) {
  const program = await compile(scoreGraph(dims.V, temperature), { threads: 2 });
  const out = await program.run({
    logits: hostTensor("float32", [dims.B, dims.T, dims.V], logits),
    tokens: hostTensor("int64", [dims.B, dims.T], tokens),
    ref: hostTensor("float32", [dims.B, dims.T], ref),
  });
  await program.release();
  return out;
}

Deno.test("tokenEntropy() gives H = 0.832396 for logits [2, 1, 0] at T = 1 and 0.441057 at T = 0.5", async () => {
  for (const [temperature, expected] of [[1, 0.832396], [0.5, 0.441057]]) {
    const out = await runScore(
      Float32Array.of(2, 1, 0),
      [0],
      [0],
      { B: 1, T: 1, V: 3 },
      temperature,
    );
    assertAllClose(out.host("entropy").float32(), [expected], `H at T=${temperature}`, {
      atol: 2e-6,
    });
  }
});

Deno.test("klK3() matches the k3 vector (ℓ=−1.0, ℓ_ref=−1.2 → 0.018731)", async () => {
  const b = new GraphBuilder("k3");
  const logp = b.input("logp", "float32", [1]);
  const ref = b.input("ref", "float32", [1]);
  b.output(klK3(b, logp, ref), "k3");
  const program = await compile(b.build(), { threads: 1 });
  const out = await program.run({
    logp: hostTensor("float32", [1], [-1]),
    ref: hostTensor("float32", [1], [-1.2]),
  });
  assertAllClose(out.host("k3").float32(), [0.018731], "k3", { atol: 1e-6 });
  await program.release();
});

Deno.test("fused logits graphs match the TypeScript references on random inputs", async () => {
  const dims = { B: 3, T: 5, V: 37 };
  const next = normalStream(11);
  for (const [temperature, scale] of [[1, 1], [0.7, 4], [1.3, 20]]) {
    const logits = randomNormal([dims.B, dims.T, dims.V], next, scale);
    const tokens = Array.from({ length: dims.B * dims.T }, (_, i) => (i * 7 + 3) % dims.V);
    const ref = Array.from({ length: dims.B * dims.T }, () => next() * 2 - 3);
    const out = await runScore(logits, tokens, ref, dims, temperature);
    const what = `T=${temperature}, logit scale ${scale}`;
    const logp = chosenLogProbReference(logits, tokens, { vocab: dims.V, temperature });
    assertAllClose(out.host("logp").float32(), logp, `logp (${what})`, { atol: 2e-5 });
    assertAllClose(
      out.host("entropy").float32(),
      tokenEntropyReference(logits, dims.V, temperature),
      `entropy (${what})`,
      { atol: 2e-5 },
    );
    assertAllClose(
      out.host("k3").float32(),
      klK3Reference(out.host("logp").float32(), ref),
      `k3 (${what})`,
      { atol: 1e-5 },
    );
  }
});

Deno.test("klK3() clamps the log-ratio to ±20 and the estimate to 10", async () => {
  const b = new GraphBuilder("k3_clamp");
  const logp = b.input("logp", "float32", [5]);
  const ref = b.input("ref", "float32", [5]);
  b.output(klK3(b, logp, ref), "k3");
  const program = await compile(b.build(), { threads: 1 });
  const lp = [0, -50, -3, -Infinity, 0];
  const rf = [-50, 0, 0, 0, 0];
  const out = await program.run({
    logp: hostTensor("float32", [5], lp),
    ref: hostTensor("float32", [5], rf),
  });
  // d = −50 → −20 → e^−20 + 19 → 10; d = 50 → 20 → 10; d = 3 → e³ − 4 > 10 → 10;
  // ℓ = −∞ (a zero-probability token): d = +∞ → 20 → 10, where exp(∞) − ∞ would be NaN.
  assertAllClose(out.host("k3").float32(), [10, 10, 10, 10, 0], "k3 clamps", { atol: 1e-6 });
  assertAllClose(out.host("k3").float32(), klK3Reference(lp, rf), "k3 vs reference");
  await program.release();
});

Deno.test("chosenLogProb() accepts int32 ids and [...,1]-shaped int64 ids", async () => {
  const logits = Float32Array.of(2, 1, 0, 0, 1, 2);
  const expected = chosenLogProbReference(logits, [1, 2], { vocab: 3 });
  for (const [dtype, shape] of [["int32", [2]], ["int64", [2, 1]]] as const) {
    const b = new GraphBuilder("logp");
    const z = b.input("z", "float32", [2, 3]);
    const ids = b.input("ids", dtype, shape);
    b.output(chosenLogProb(b, z, ids), "logp");
    const program = await compile(b.build(), { threads: 1 });
    const out = await program.run({
      z: hostTensor("float32", [2, 3], logits),
      ids: hostTensor(dtype, shape, [1, 2]),
    });
    assert.deepEqual(out.host("logp").dims, [2]);
    assertAllClose(out.host("logp").float32(), expected, `logp with ${dtype}[${shape}] ids`);
    await program.release();
  }
});

Deno.test("chosenLogProb() rejects float token ids with a message naming them", () => {
  const b = new GraphBuilder("bad");
  const z = b.input("z", "float32", [2, 3]);
  const ids = b.input("ids", "float32", [2]);
  assert.throws(() => chosenLogProb(b, z, ids), /tokens ids must be int64 or int32, got float32/);
});
