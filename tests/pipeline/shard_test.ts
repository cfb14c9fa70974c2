/**
 * Sharded stages: each shard is its own cached artifact, the merged artifact is byte for byte
 * the one the unsharded stage writes (under the same key, whatever the shard count), a failed
 * shard reruns alone, and `status` and `--dry-run` show shards. Run on a small fixture pipeline
 * (tests/pipeline/_shard_stages.ts) and on the real score and evaluate stages.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildGraph } from "../../pipeline/graph.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { shardOf } from "../../pipeline/stage.ts";
import { stages as realStages } from "../../stages/mod.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, readLock, ROOT, sent, sentOk } from "./_harness.ts";

const STAGES = { stages: `${ROOT}/tests/pipeline/_shard_stages.ts` };

/** Path → sha256 of every file of a node's artifact, read through the lock file's key. */
async function artifactFiles(dir: string, node: string): Promise<Record<string, string>> {
  const { stage, key } = (await readLock(dir)).nodes[node];
  const root = `${dir}/store/${stage}/${key.slice(0, 2)}/${key}`;
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(root)) {
    if (entry.name === "manifest.json") continue;
    out[entry.name] = await digest(`${root}/${entry.name}`);
  }
  return out;
}

async function digest(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("shardOf() ranges are contiguous, in order, cover every unit and differ in size by at most one", () => {
  for (const [total, count] of [[10, 3], [5, 7], [0, 2], [64, 8], [1, 1]]) {
    const ranges = Array.from({ length: count }, (_, i) => shardOf(i, count).range(total));
    assert.equal(ranges[0][0], 0);
    assert.equal(ranges[count - 1][1], total);
    for (let i = 1; i < count; i++) assert.equal(ranges[i][0], ranges[i - 1][1]);
    const sizes = ranges.map(([a, b]) => b - a);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${total}/${count}: ${sizes}`);
  }
  assert.deepEqual(shardOf(1, 3).range(10), [3, 6]);
  assert.throws(() => shardOf(3, 3), /index must be below the count/);
});

Deno.test("a sharded stage's merged artifact is the unsharded one byte for byte, under the same key, for 1, 3 and 7 shards (some empty)", async () => {
  const files: Record<string, string>[] = [];
  const keys: string[] = [];
  for (const count of [1, 3, 7]) {
    const dir = await makeTestDir(`shard-count-${count}`);
    const args = ["reproduce", "--store", `${dir}/store`, "--set", "squares.items=5"];
    const run = await sentOk([...args, "--set", `squares.shards=${count}`], STAGES);
    files.push(await artifactFiles(dir, "squares"));
    keys.push((await readLock(dir)).nodes.squares.key);
    const record = await latestRecord(dir);
    const squares = record.nodes.find((node) => node.node === "squares")!;
    if (count === 1) {
      assert.equal(squares.shards, undefined);
      assert.doesNotMatch(run.stdout, /shards/);
    } else {
      assert.deepEqual(
        squares.shards!.map((shard) => [shard.shard, shard.state]),
        Array.from({ length: count }, (_, i) => [`squares#${i + 1}/${count}`, "ran"]),
      );
      assert.match(run.stdout, new RegExp(`4 nodes: 4 ran · ${count} shards: ${count} ran`));
    }
  }
  assert.deepEqual(files[1], files[0]);
  assert.deepEqual(files[2], files[0]);
  assert.equal(new Set(keys).size, 1, "the shard count is not part of the key");
});

Deno.test("a failed shard fails its node by name; status lists the shards; the next run reruns that shard alone", async () => {
  const dir = await makeTestDir("shard-fail");
  const args = ["--store", `${dir}/store`, "--set", "squares.shards=4"];
  const failing = await sent(["stage", "squares", ...args], {
    ...STAGES,
    env: { SENT_SHARD_FAIL: "squares#3/4" },
  });
  assert.equal(failing.code, 1, failing.stderr);
  assert.match(failing.stderr, /failed\s+squares#3\/4\s+planned failure of squares#3\/4/);
  assert.match(
    failing.stderr,
    /failed\s+squares\s+shard squares#3\/4 failed: planned failure of squares#3\/4/,
  );

  const status = await sentOk(["status", ...args], STAGES);
  assert.match(status.stdout, /^new\s+squares\s+.*; 3 of 4 shards in the store$/m);
  assert.match(status.stdout, /^ {2}cached\s+squares#1\/4\s+[0-9a-f]{12}$/m);
  assert.match(status.stdout, /^ {2}to run\s+squares#3\/4\s+[0-9a-f]{12}$/m);

  const plan = await sentOk(["stage", "squares", ...args, "--dry-run"], STAGES);
  assert.match(plan.stderr, /planned\s+squares#3\/4\s+not in store/);
  assert.match(plan.stderr, /cached\s+squares#4\/4/);

  await sentOk(["stage", "squares", ...args], STAGES);
  const rerun = (await latestRecord(dir)).nodes.find((node) => node.node === "squares")!;
  assert.equal(rerun.state, "ran");
  assert.deepEqual(rerun.shards!.map((shard) => shard.state), [
    "cached",
    "cached",
    "ran",
    "cached",
  ]);

  const whole = await makeTestDir("shard-fail-whole");
  await sentOk(["stage", "squares", "--store", `${whole}/store`], STAGES);
  assert.deepEqual(await artifactFiles(dir, "squares"), await artifactFiles(whole, "squares"));
});

Deno.test("--force recomputes a sharded node's shards as well", async () => {
  const dir = await makeTestDir("shard-force");
  const args = ["stage", "squares", "--store", `${dir}/store`, "--set", "squares.shards=2"];
  await sentOk(args, STAGES);
  await sentOk([...args, "--force"], STAGES);
  const node = (await latestRecord(dir)).nodes.find((n) => n.node === "squares")!;
  assert.equal(node.reason, "forced (--force)");
  assert.deepEqual(node.shards!.map((shard) => shard.state), ["ran", "ran"]);
});

Deno.test("score.shards, evaluate.shards and the executor keys are left out of every cache key of the real pipeline", async () => {
  const keysWith = async (sets: string[]) => {
    const config = await loadConfig({ preset: "test", sets });
    const graph = await buildGraph(realStages, config, { root: ROOT });
    return graph.nodes.map((node) => [node.id, node.key, node.shards.length]);
  };
  const whole = await keysWith([]);
  const sharded = await keysWith(["score.shards=8", "evaluate.shards=3", "executor.retries=5"]);
  assert.deepEqual(sharded.map(([id, key]) => [id, key]), whole.map(([id, key]) => [id, key]));
  assert.deepEqual(
    sharded.filter(([, , n]) => n !== 0).map(([id, , n]) => [String(id).split("[")[0], n])
      .filter(([stage], i, all) => all.findIndex(([s]) => s === stage) === i),
    [["score", 8], ["evaluate", 3]],
  );
});

Deno.test("the real score and evaluate stages write the same bytes sharded (3 and 4 shards) as whole", async () => {
  const args = ["stage", "evaluate", "--preset", "test", "--set", "train.methods=[grpo]"];
  const cli = { script: "pipeline/cli.ts" };
  const whole = await makeTestDir("shard-real-whole");
  const split = await makeTestDir("shard-real-split");
  await sentOk([...args, "--store", `${whole}/store`], cli);
  const out = await sentOk([
    ...args,
    "--store",
    `${split}/store`,
    "--set",
    "score.shards=3",
    "--set",
    "evaluate.shards=4",
  ], cli);
  assert.match(out.stdout, /· 15 shards: 15 ran/); // 3 for score, 4 for each of 3 policies
  const nodes = Object.keys((await readLock(whole)).nodes).filter((id) =>
    /^(score|evaluate)/.test(id)
  );
  assert.equal(nodes.length, 4);
  for (const node of nodes) {
    assert.equal((await readLock(split)).nodes[node].key, (await readLock(whole)).nodes[node].key);
    assert.deepEqual(await artifactFiles(split, node), await artifactFiles(whole, node), node);
  }
});
