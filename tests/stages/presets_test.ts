/**
 * The paper-scale presets: the hyperparameters of the SENT paper's scripts, the real eval sets
 * and k values, checkpoint and data folders as keys, and `--dry-run` planning them with their
 * estimated tokens and FLOPs per stage, before the checkpoint is there and after.
 */

import assert from "node:assert/strict";
import { loadConfig } from "../../pipeline/config.ts";
import { parameterCount, qwen2ConfigFromHF } from "../../kernels/transformer.ts";
import { KNOWN_ARCHITECTURES } from "../../stages/_estimate.ts";
import { makeTestDir } from "../_tmp.ts";
import { sent } from "../pipeline/_harness.ts";

const TABLE_METHODS = [
  "grpo",
  "entropy_bonus",
  "entropy_adv",
  "high_entropy_mask",
  "clip_cov",
  "kl_cov",
  "high_en",
  "sent",
];

Deno.test("presets r1-distill-1.5b and qwen2.5-math-7b carry the paper's training and evaluation settings", async () => {
  for (
    const [preset, folder] of [
      ["r1-distill-1.5b", "checkpoints/DeepSeek-R1-Distill-Qwen-1.5B"],
      ["qwen2.5-math-7b", "checkpoints/Qwen2.5-Math-7B"],
    ]
  ) {
    const { values } = await loadConfig({ preset });
    const v = values as Record<string, Record<string, unknown>>;
    assert.deepEqual(v.base.kind, "checkpoint", preset);
    assert.equal(v.base.checkpoint, folder);
    assert.equal(v.data.dir, ".sent/datasets");
    assert.equal(v.data.task, "dapo_math_17k");
    assert.equal(v.grader.mode, "opencompass-v2");
    const t = v.train;
    // 256 prompts × 8 responses, mini-batches of 128 prompts → 2 optimizer steps, 4 per micro.
    assert.deepEqual(
      [t.promptsPerStep, t.groupSize, t.miniBatches, t.microBatchSize],
      [256, 8, 2, 4],
    );
    assert.equal((t.promptsPerStep as number) / (t.miniBatches as number), 128);
    assert.deepEqual([t.lr, t.maxResponseTokens, t.klCoef, t.temperature], [1e-6, 2048, 0.001, 1]);
    assert.deepEqual([t.epochs, v.curriculum.epochsPerStage, v.curriculum.buckets], [5, 5, 2]);
    assert.deepEqual(t.methods, TABLE_METHODS);
    assert.deepEqual(v.data.evalSets, [
      "aime24",
      "aime25",
      "amc23",
      "math500",
      "olympiadbench",
      "minerva_math",
    ]);
    assert.deepEqual([v.evaluate.samples, v.evaluate.ks], [32, [8, 16, 32]]);
    assert.deepEqual([v.score.samples, v.score.maxTokens], [8, 2048]);
  }
});

/** The `estimated cost` table of a dry run, as stage → [nodes, tokens, FLOPs]. */
function costTable(stdout: string): Map<string, [number, number, number]> {
  const rows = new Map<string, [number, number, number]>();
  for (const m of stdout.matchAll(/^ {2}(\w+)\s+(\d+)\s+([\d.e]+)\s+([\d.e]+)$/gm)) {
    rows.set(m[1], [Number(m[2]), Number(m[3]), Number(m[4])]);
  }
  return rows;
}

Deno.test("--dry-run --preset r1-distill-1.5b plans every node and prints tokens and FLOPs per stage from the model size", async () => {
  const root = await makeTestDir("presets-dry-run");
  const run = await sent(
    ["reproduce", "--dry-run", "--preset", "r1-distill-1.5b", "--store", `${root}/store`],
    { script: "pipeline/cli.ts" },
  );
  assert.equal(run.code, 0, run.stdout + run.stderr);
  // Nothing has run and nothing is downloaded: every node is planned, and each is in the table.
  const [, nodes, planned] = /^(\d+) nodes: (\d+) planned/m.exec(run.stdout) ?? [];
  assert.ok(Number(nodes) >= 22 && nodes === planned, run.stdout);
  assert.match(run.stdout, new RegExp(`estimated cost of the ${nodes} planned nodes`));
  const table = costTable(run.stdout);
  assert.equal(table.get("total")![0], Number(nodes));
  assert.deepEqual(table.get("base"), [1, 0, 0]);
  // Per train node: ⌊16384 / 256⌋ × 5 epochs = 320 steps (curriculum: 2 × 32 × 5) of 2048
  // responses, each 256 assumed prompt tokens + 2048 response tokens.
  const [trainNodes, trainTokens, trainFlops] = table.get("train")!;
  assert.equal(trainNodes, 8);
  assert.equal(trainTokens, Number((8 * 320 * 2048 * (256 + 2048)).toExponential(2)));
  // Sampling (~2N per token), two scoring passes (~4N) and an update (~6N): ~12 N FLOPs per
  // token for N parameters, a little more for attention and the output head of every position.
  const params = parameterCount(
    qwen2ConfigFromHF(KNOWN_ARCHITECTURES["deepseek-r1-distill-qwen-1.5b"]),
  );
  const perTokenParam = trainFlops / trainTokens / params;
  assert.ok(perTokenParam > 8 && perTokenParam < 16, `${perTokenParam} FLOPs per token-parameter`);
  const [evalNodes, evalTokens] = table.get("evaluate")!;
  // 9 policies × (30 + 30 + 40 + 500 + 675 + 272 problems) × 33 sequences × (256 + 8000) tokens.
  assert.equal(evalNodes, 9);
  assert.equal(evalTokens, Number((9 * 1547 * 33 * 8256).toExponential(2)));
  assert.ok(table.get("total")![2] > trainFlops);
  // The dry run wrote nothing: no store, no lock file.
  await assert.rejects(Deno.stat(`${root}/store/store.json`));
});

Deno.test("--dry-run sizes the model from the checkpoint's config.json once it is there", async () => {
  const root = await makeTestDir("presets-dry-run-ckpt");
  const half = { ...KNOWN_ARCHITECTURES["deepseek-r1-distill-qwen-1.5b"], num_hidden_layers: 14 };
  const dryRun = async (checkpoint: string) => {
    const run = await sent([
      "reproduce",
      "--dry-run",
      "--preset",
      "r1-distill-1.5b",
      "--store",
      `${root}/store`,
      "--set",
      `base.checkpoint=${checkpoint}`,
    ], { script: "pipeline/cli.ts" });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    return costTable(run.stdout);
  };
  await Deno.mkdir(`${root}/ckpt`);
  await Deno.writeTextFile(`${root}/ckpt/config.json`, JSON.stringify(half));
  const read = await dryRun(`${root}/ckpt`);
  const full = await dryRun(`${root}/DeepSeek-R1-Distill-Qwen-1.5B`); // absent: known by name
  const ratio = read.get("train")![2] / full.get("train")![2];
  assert.ok(ratio > 0.45 && ratio < 0.65, `14 of 28 layers: FLOPs ratio ${ratio}`);
  assert.equal(read.get("train")![1], full.get("train")![1]); // tokens do not depend on size

  // A folder that is neither there nor a known checkpoint: the model-bound stages show "?".
  const run = await sent([
    "reproduce",
    "--dry-run",
    "--preset",
    "r1-distill-1.5b",
    "--store",
    `${root}/store`,
    "--set",
    `base.checkpoint=${root}/unknown-model`,
  ], { script: "pipeline/cli.ts" });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^ {2}train\s+8\s+\?\s+\?$/m);
  assert.match(
    run.stdout,
    /\? : not known \(score, train, evaluate: the model size could not be read\)/,
  );
});
