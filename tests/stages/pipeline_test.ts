/**
 * The real DAG on the `test` preset: every method through base → score → curriculum → train →
 * evaluate → results, the cache and invalidation rules with the real stages, and a train node
 * killed with SIGKILL that resumes to the same bytes.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { makeTestDir } from "../_tmp.ts";
import { sent, spawnSent } from "../pipeline/_harness.ts";
import { passAtKPercent } from "../../stages/_rl/pass_at_k.ts";
import { validateResults } from "../../stages/_rl/results.ts";
import { METHODS } from "../../pipeline/config_core.ts";
import { TRAINING_METHOD_NAMES } from "../../stages/_methods.ts";

const CLI = { script: "pipeline/cli.ts" };

async function run(root: string, ...args: string[]) {
  const out = await sent([...args, "--preset", "test", "--store", `${root}/store`], CLI);
  return { ...out, out: out.stdout + out.stderr };
}

async function lockKey(root: string, node: string): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(`${root}/sent.lock.json`));
  return lock.nodes[node].key;
}

async function artifactDir(root: string, node: string): Promise<string> {
  const key = await lockKey(root, node);
  return `${root}/store/${node.split("[")[0]}/${key.slice(0, 2)}/${key}`;
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("the config's method names are exactly the training methods the train stage knows", () => {
  assert.deepEqual([...METHODS], [...TRAINING_METHOD_NAMES]);
});

Deno.test("reproduce --preset test trains every method, evaluates every policy and writes a valid results.json", async () => {
  const root = await makeTestDir("pipeline-test");
  const first = await run(root, "reproduce");
  assert.equal(first.code, 0, first.out);
  const path = /^results: (.+)$/m.exec(first.stdout)?.[1];
  assert.ok(path, `no "results: PATH" line in\n${first.stdout}`);

  // results.json follows sent-results/1, and its numbers recompute from its own records
  const results = validateResults(JSON.parse(await Deno.readTextFile(path)));
  assert.deepEqual(Object.keys(results.sets).sort(), ["tiny-aime24", "tiny-aime25"]);
  for (const policies of Object.values(results.sets)) {
    assert.deepEqual(
      Object.keys(policies).sort(),
      ["base", "base@t0.5", ...TRAINING_METHOD_NAMES].sort(),
    );
    for (const policy of Object.values(policies)) {
      const seed = policy.seeds["1"];
      for (const k of results.ks) {
        assert.equal(seed["pass@k"][String(k)], passAtKPercent(seed.problems, k));
      }
      assert.equal(typeof seed.greedy, "number");
    }
  }

  // every train node logged its per-step metrics
  for (const method of TRAINING_METHOD_NAMES) {
    const dir = await artifactDir(root, `train[method=${method},seed=1]`);
    const rows = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
      .map((line) => JSON.parse(line));
    assert.ok(rows.length >= 2, `${method}: ${rows.length} steps`);
    for (
      const key of [
        "reward/mean",
        "accuracy",
        "zero_variance_groups",
        "entropy",
        "ref_kl",
        "loss/ppo_kl",
        "loss/pg_clipfrac",
        "grad_norm",
        "tokens_per_s",
      ]
    ) {
      assert.ok(Number.isFinite(rows[0][key]), `${method}: metric ${key} = ${rows[0][key]}`);
    }
    await Deno.stat(`${dir}/policy/model.safetensors`);
  }

  // a second run is fully cached
  const second = await run(root, "reproduce");
  assert.equal(second.code, 0, second.out);
  const cached = /(\d+) nodes: (\d+) cached/.exec(second.stdout);
  assert.ok(cached && cached[1] === cached[2], `not fully cached:\n${second.stdout}`);
});

Deno.test("changing train.lr makes train, the trained policies' evaluate and results stale; a new seed adds only new nodes", async () => {
  const root = await makeTestDir("pipeline-stale");
  const first = await run(root, "reproduce", "--set", "train.methods=[grpo,sent]");
  assert.equal(first.code, 0, first.out);

  const lr = await run(
    root,
    "status",
    "--set",
    "train.methods=[grpo,sent]",
    "--set",
    "train.lr=0.0002",
  );
  assert.equal(lr.code, 0, lr.out);
  // (the report, downstream of everything, goes stale too; it is not what this test is about)
  const stale = [...lr.stdout.matchAll(/^stale\s+(\S+)/gm)].map((m) => m[1])
    .filter((node) => node !== "report").sort();
  assert.deepEqual(stale, [
    "evaluate[policy=grpo,seed=1]",
    "evaluate[policy=sent,seed=1]",
    "results",
    "train[method=grpo,seed=1]",
    "train[method=sent,seed=1]",
  ]);

  const seed = await run(
    root,
    "reproduce",
    "--set",
    "train.methods=[grpo,sent]",
    "--set",
    "runtime.seeds=[1,2]",
  );
  assert.equal(seed.code, 0, seed.out);
  const ran = [...seed.out.matchAll(/^\s*ran\s+(\S+)/gm)].map((m) => m[1])
    .filter((node) => node !== "report").sort();
  assert.deepEqual(ran, [
    "evaluate[policy=base,seed=2]",
    "evaluate[policy=base@t0.5,seed=2]",
    "evaluate[policy=grpo,seed=2]",
    "evaluate[policy=sent,seed=2]",
    "results",
    "train[method=grpo,seed=2]",
    "train[method=sent,seed=2]",
  ]);
});

Deno.test("a train node killed with SIGKILL after a checkpoint resumes and ends with the same weights as an uninterrupted run", async () => {
  // Three epochs of twelve steps, a checkpoint after every step.
  const sets = ["--set", "train.methods=[sent_no_curriculum]", "--set", "train.epochs=3"];
  const whole = await makeTestDir("train-whole");
  const uninterrupted = await run(whole, "reproduce", ...sets);
  assert.equal(uninterrupted.code, 0, uninterrupted.out);
  const node = "train[method=sent_no_curriculum,seed=1]";
  const expected = await sha256(`${await artifactDir(whole, node)}/policy/model.safetensors`);

  const killed = await makeTestDir("train-killed");
  const args = ["reproduce", ...sets, "--preset", "test", "--store", `${killed}/store`];
  const child = spawnSent(args, CLI);
  const key = await waitForCheckpoint(`${killed}/store/.scratch/train`);
  child.kill("SIGKILL");
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  assert.equal(status.signal, "SIGKILL", "the run finished before it could be killed");

  const resumed = await run(killed, "reproduce", ...sets);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /resumed at stage 0, step [1-9]/);
  assert.equal(await lockKey(killed, node), key);
  assert.equal(
    await sha256(`${await artifactDir(killed, node)}/policy/model.safetensors`),
    expected,
  );
});

/** Wait until a train node's scratch folder holds a checkpoint pointer; return the node's key. */
async function waitForCheckpoint(trainScratch: string): Promise<string> {
  for (let i = 0; i < 6000; i++) {
    try {
      for await (const entry of Deno.readDir(trainScratch)) {
        try {
          await Deno.stat(`${trainScratch}/${entry.name}/latest.json`);
          return entry.name;
        } catch { /* not yet */ }
      }
    } catch { /* the folder does not exist yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no checkpoint appeared under ${trainScratch}`);
}

Deno.test("--jobs 2 runs independent nodes side by side, one thread each, and writes the same artifacts as --jobs 1", async () => {
  const sets = ["--set", "train.methods=[grpo,sent]"];
  const one = await makeTestDir("jobs-1");
  const two = await makeTestDir("jobs-2");
  const a = await run(one, "reproduce", ...sets);
  const b = await run(two, "reproduce", ...sets, "--jobs", "2");
  assert.equal(a.code, 0, a.out);
  assert.equal(b.code, 0, b.out);
  assert.match(b.out, /jobs 2/);
  for (const node of ["results", "train[method=grpo,seed=1]", "train[method=sent,seed=1]"]) {
    assert.equal(await lockKey(one, node), await lockKey(two, node));
  }
  const file = (root: string, node: string, f: string) =>
    artifactDir(root, node).then((dir) => sha256(`${dir}/${f}`));
  assert.equal(
    await file(two, "results", "results.json"),
    await file(one, "results", "results.json"),
  );
  for (const method of ["grpo", "sent"]) {
    const node = `train[method=${method},seed=1]`;
    assert.equal(
      await file(two, node, "policy/model.safetensors"),
      await file(one, node, "policy/model.safetensors"),
    );
  }
});
