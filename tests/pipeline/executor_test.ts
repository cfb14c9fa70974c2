/**
 * The local executor: `--jobs N` runs nodes and shards in N worker processes, each with 1/N of
 * the thread budget, into the same bytes as `--jobs 1`; the run keeps the store lock, a dead
 * worker fails its task by name, and a run that is killed takes its workers with it. Run on the
 * fixture pipeline of tests/pipeline/_shard_stages.ts, whose manifests name the process and the
 * threads of each task.
 */

import assert from "node:assert/strict";
import { WORKER_FLAGS } from "../../pipeline/flags.ts";
import { ArtifactStore, type Manifest } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import { ROOT, sentOk, spawnSent, waitForFile } from "./_harness.ts";

const STAGES = { stages: `${ROOT}/tests/pipeline/_shard_stages.ts` };
const decoder = new TextDecoder();

/** Node or shard id → manifest, for every artifact of a store. */
async function manifests(store: string): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  const artifacts = new ArtifactStore(store);
  for (const { stage, key } of await artifacts.list()) {
    const { manifest } = await artifacts.read(stage, key);
    out.set(manifest!.node, manifest!);
  }
  return out;
}

/** Whether a process is alive (`kill -0`). */
async function alive(pid: number): Promise<boolean> {
  const out = await new Deno.Command("kill", { args: ["-0", String(pid)], stderr: "null" })
    .output();
  return out.success;
}

Deno.test("--jobs 2 runs nodes and shards in two worker processes with half the threads each, into the bytes of --jobs 1", async () => {
  // Each task waits 300 ms, so that both workers get work.
  const env = { SENT_SHARD_SLEEP_MS: "300" };
  const sets = ["--set", "runtime.threads=4", "--set", "squares.shards=3"];
  const runs: { pid: number; found: Map<string, Manifest> }[] = [];
  for (const jobs of ["1", "2"]) {
    const dir = await makeTestDir(`executor-jobs-${jobs}`);
    const child = spawnSent(["reproduce", "--store", `${dir}/store`, ...sets, "--jobs", jobs], {
      ...STAGES,
      env,
    });
    const out = await child.output();
    assert.equal(out.code, 0, decoder.decode(out.stderr));
    runs.push({ pid: child.pid, found: await manifests(`${dir}/store`) });
  }
  const [one, two] = runs;
  const tasks = [
    "numbers",
    "pair[branch=a]",
    "pair[branch=b]",
    "squares#1/3",
    "squares#2/3",
    "squares#3/3",
  ];
  assert.deepEqual([...one.found.keys()].sort(), [...tasks, "squares"].sort());
  for (const id of tasks) {
    assert.equal(one.found.get(id)!.metrics.pid, one.pid, `${id} ran in the run's process`);
    assert.equal(one.found.get(id)!.metrics.threads, 4, `${id}: the whole budget`);
    assert.notEqual(two.found.get(id)!.metrics.pid, two.pid, `${id} ran in a worker`);
    assert.equal(two.found.get(id)!.metrics.threads, 2, `${id}: half the budget`);
  }
  const workers = new Set(tasks.map((id) => two.found.get(id)!.metrics.pid));
  assert.equal(workers.size, 2, `two worker processes, not ${[...workers].join(", ")}`);
  // The merge runs in the run's own process, which holds the store lock.
  assert.equal(two.found.get("squares")!.metrics.pid, two.pid);
  for (const [id, manifest] of one.found) {
    assert.equal(two.found.get(id)!.key, manifest.key, id);
    assert.deepEqual(two.found.get(id)!.files, manifest.files, `files of ${id}`);
  }
});

Deno.test("a worker killed in the middle of a task fails that task, naming the worker, and the next run completes", async () => {
  const dir = await makeTestDir("executor-worker-killed");
  const pause = `${dir}/pause`;
  await Deno.writeTextFile(pause, "");
  const args = ["stage", "pair", "--store", `${dir}/store`, "--jobs", "2"];
  const child = spawnSent(args, { ...STAGES, env: { SENT_SHARD_PAUSE: pause } });
  await waitForFile(`${pause}.a`);
  await waitForFile(`${pause}.b`);
  const victim = Number(await Deno.readTextFile(`${pause}.a`));
  assert.notEqual(victim, child.pid);
  Deno.kill(victim, "SIGKILL");
  await Deno.remove(pause);
  const out = await child.output();
  const stderr = decoder.decode(out.stderr);
  assert.equal(out.code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `failed\\s+pair\\[branch=a\\]\\s+worker process ${victim} was killed by SIGKILL while running pair\\[branch=a\\]`,
    ),
  );
  assert.match(stderr, /ran\s+pair\[branch=b\]/);
  const next = await sentOk(args, STAGES);
  assert.match(next.stdout, /3 nodes: 2 cached, 1 ran/);
});

Deno.test("a run killed with SIGKILL takes its workers with it, and the next run completes", async () => {
  const dir = await makeTestDir("executor-run-killed");
  const pause = `${dir}/pause`;
  await Deno.writeTextFile(pause, "");
  const args = ["reproduce", "--store", `${dir}/store`, "--jobs", "2"];
  const child = spawnSent(args, { ...STAGES, env: { SENT_SHARD_PAUSE: pause } });
  await waitForFile(`${pause}.a`);
  await waitForFile(`${pause}.b`);
  const workers = await Promise.all(
    ["a", "b"].map(async (b) => Number(await Deno.readTextFile(`${pause}.${b}`))),
  );
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  // The pause file is still there: the workers end because their run's pipe closed.
  const deadline = Date.now() + 10_000;
  while ((await Promise.all(workers.map(alive))).some((up) => up)) {
    assert.ok(Date.now() < deadline, `workers ${workers.join(", ")} outlived their run`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await Deno.remove(pause);
  const next = await sentOk(args, STAGES);
  assert.doesNotMatch(next.stderr, /waiting for/);
  // numbers and squares were done before both pair nodes could start.
  assert.match(next.stdout, /4 nodes: 2 cached, 2 ran/);
});

Deno.test("--jobs 2 where starting deno is not permitted is one line naming the permission, exit 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...WORKER_FLAGS, "tests/pipeline/_fixture_cli.ts", "reproduce", "--jobs", "2"],
    cwd: ROOT,
    env: { NO_COLOR: "1", SENT_FIXTURE_STAGES: STAGES.stages },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(
    decoder.decode(out.stderr).trim(),
    "sent reproduce: --jobs 2 runs nodes in 2 worker processes of Deno, and starting deno is not " +
      "permitted here; the pipeline permission set allows it (run: deno), or give --allow-run=deno",
  );
});
