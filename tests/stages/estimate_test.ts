/**
 * The stages' cost estimates on the tiny preset, where every count can be checked by hand, and
 * the dry-run table's cells.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../../pipeline/config.ts";
import { formatCount } from "../../pipeline/estimate.ts";
import { forwardFlops } from "../../kernels/transformer.ts";
import {
  estimateBase,
  estimateEvaluate,
  estimateScore,
  estimateTrain,
  PROMPT_TOKENS,
  runArchitecture,
  trainSteps,
} from "../../stages/_estimate.ts";

const { values: tiny } = await loadConfig({ preset: "tiny" });

Deno.test("estimates of the tiny preset count its sequences and tokens as its stages run them", () => {
  const P = PROMPT_TOKENS.builtin;
  const arch = runArchitecture(tiny)!;
  assert.deepEqual([arch.hiddenSize, arch.numLayers, arch.vocabSize], [192, 4, 28]);
  // Warm-up: 1500 steps × 32 sequences × 64 tokens, forward and backward.
  const base = estimateBase(tiny)!;
  assert.equal(base.tokens, 1500 * 32 * 64);
  assert.equal(
    base.flops,
    1500 * 32 * 3 * forwardFlops(arch, { tokens: 64, keys: 32, logitRows: 64 }),
  );
  // Score: 1280 problems × 8 samples of 40 tokens after a 16-token prompt.
  assert.equal(estimateScore(tiny)!.tokens, 1280 * 8 * (P + 40));
  // Train: 1280 / 16 = 80 steps of 16 × 8 responses; a curriculum cuts 2 buckets of 640.
  assert.equal(trainSteps(tiny, "grpo"), 80);
  assert.equal(trainSteps(tiny, "sent"), 80);
  assert.equal(estimateTrain(tiny, { method: "sent" })!.tokens, 80 * 128 * (P + 40));
  // Evaluate: 2 sets × 256 problems × (8 samples + 1 greedy).
  assert.equal(estimateEvaluate(tiny)!.tokens, 2 * 256 * 9 * (P + 40));
  // A checkpoint import copies files: no model work.
  assert.deepEqual(estimateBase({ ...tiny, base: { kind: "checkpoint", checkpoint: "x" } }), {
    tokens: 0,
    flops: 0,
  });
});

Deno.test("estimates follow the model: twice the layers, about twice the FLOPs; unknown size is null", () => {
  const wide = structuredClone(tiny) as Record<string, Record<string, Record<string, number>>>;
  wide.base.model.layers = 8;
  const ratio = estimateTrain(wide, { method: "grpo" })!.flops /
    estimateTrain(tiny, { method: "grpo" })!.flops;
  assert.ok(ratio > 1.5 && ratio < 2, String(ratio));
  const missing = { ...tiny, base: { kind: "checkpoint", checkpoint: ".sent/tmp/no-such-model" } };
  assert.equal(runArchitecture(missing), null);
  assert.equal(estimateScore(missing), null);
});

Deno.test("formatCount() keeps small counts whole and writes large ones with an exponent", () => {
  assert.deepEqual(
    [formatCount(0), formatCount(9999), formatCount(12345), formatCount(2.53e20), formatCount(NaN)],
    ["0", "9999", "1.23e4", "2.53e20", "–"],
  );
});
