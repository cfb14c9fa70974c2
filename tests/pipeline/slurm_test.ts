/**
 * The SLURM executor against a real cluster: a one-node slurmctld + slurmd on this machine
 * (`.ci/slurm-up` starts one from Debian's slurm-wlm and munge packages). A sharded score stage
 * runs as a job array and merges into the bytes of a local run; an array task cancelled with
 * `scancel` is resubmitted, and past the retry limit it fails the run naming the shard and its
 * log file. Without `sbatch`, or without a controller answering, the cluster tests are skipped
 * with the reason.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { WORKER_FLAGS } from "../../pipeline/flags.ts";
import { sbatchArgs } from "../../pipeline/slurm.ts";
import type { RunRecord } from "../../pipeline/records.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, readLock, ROOT, sentOk } from "./_harness.ts";

const CLI = { script: "pipeline/cli.ts" };
const SLURM_RUN = "--allow-run=sbatch,squeue,sacct,scancel";
const decoder = new TextDecoder();

/** Whether a cluster answers here, and if not why. */
function clusterHere(): { ok: true } | { ok: false; reason: string } {
  const run = (command: string, args: string[]) => {
    try {
      const out = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
        .outputSync();
      return {
        ok: out.success,
        text: decoder.decode(out.success ? out.stdout : out.stderr).trim(),
      };
    } catch {
      return null;
    }
  };
  if (run("sbatch", ["--version"]) === null) {
    return {
      ok: false,
      reason: "sbatch is not on PATH: install Debian's slurm-wlm and munge " +
        "(apt-get install -y slurm-wlm munge) and start a one-node cluster with .ci/slurm-up",
    };
  }
  const nodes = run("sinfo", ["-h", "-o", "%T"]);
  if (!nodes?.ok || !/idle|mix|alloc/.test(nodes.text)) {
    return {
      ok: false,
      reason: `no SLURM node is up (sinfo: ${
        nodes?.text || "no answer"
      }); start one with .ci/slurm-up`,
    };
  }
  return { ok: true };
}

const CLUSTER = clusterHere();
const SKIP = CLUSTER.ok ? "" : ` (skipped: ${CLUSTER.reason})`;

/** Start the real CLI with the pipeline's permissions and the SLURM commands. */
function spawnSlurmRun(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...WORKER_FLAGS, SLURM_RUN, "pipeline/cli.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Read a run's stderr; when `pattern` first matches, call `onMatch` with the match. Resolves
 * with the exit code and the whole output once the process ends.
 */
async function watch(
  child: Deno.ChildProcess,
  pattern: RegExp,
  onMatch: (match: RegExpMatchArray) => Promise<void>,
): Promise<{ code: number; stderr: string; stdout: string; matched: boolean }> {
  const stdout = new Response(child.stdout).text();
  // A run that hangs fails the test instead of holding it.
  const timer = setTimeout(() => child.kill("SIGTERM"), 180_000);
  let stderr = "";
  let matched = false;
  for await (const chunk of child.stderr) {
    stderr += decoder.decode(chunk, { stream: true });
    const match = matched ? null : stderr.match(pattern);
    if (match) {
      matched = true;
      await onMatch(match);
    }
  }
  const { code } = await child.status;
  clearTimeout(timer);
  return { code, stderr, stdout: await stdout, matched };
}

async function scancel(job: string): Promise<void> {
  const out = await new Deno.Command("scancel", { args: [job], stderr: "piped" }).output();
  assert.ok(out.success, `scancel ${job}: ${decoder.decode(out.stderr)}`);
}

/** Path → sha256 of every file of a node's artifact (manifest aside). */
async function artifactFiles(dir: string, node: string): Promise<Record<string, string>> {
  const { stage, key } = (await readLock(dir)).nodes[node];
  const root = `${dir}/store/${stage}/${key.slice(0, 2)}/${key}`;
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(root)) {
    if (entry.name === "manifest.json") continue;
    const bytes = await Deno.readFile(`${root}/${entry.name}`);
    out[entry.name] = createHash("sha256").update(bytes).digest("hex");
  }
  return out;
}

const SHARDED = [
  "stage",
  "score",
  "--preset",
  "test",
  "--executor",
  "slurm",
  "--set",
  "score.shards=4",
  "--set",
  "executor.pollSeconds=0.2",
  // Two array tasks at a time: tasks 2 and 3 wait their turn, so one can be cancelled pending.
  "--set",
  "executor.maxRunning=2",
];

/** A store whose dataset and base are made locally, as a shared store would already hold them. */
async function storeWithBase(prefix: string): Promise<string> {
  const dir = await makeTestDir(prefix);
  await sentOk(["stage", "base", "--preset", "test", "--store", `${dir}/store`], CLI);
  return dir;
}

const scoreOf = (record: RunRecord) => record.nodes.find((node) => node.node === "score")!;

Deno.test(
  `--executor slurm runs a sharded score stage as a job array into the local run's bytes, and resubmits a shard cancelled with scancel${SKIP}`,
  { ignore: !CLUSTER.ok },
  async () => {
    const local = await makeTestDir("slurm-local");
    await sentOk(["stage", "score", "--preset", "test", "--store", `${local}/store`], CLI);

    const dir = await storeWithBase("slurm-sharded");
    const child = spawnSlurmRun([
      ...SHARDED,
      "--set",
      "executor.retries=1",
      "--store",
      `${dir}/store`,
    ]);
    let cancelled = "";
    const run = await watch(child, /score#4\/4\s+job (\d+)_3 submitted/, async (match) => {
      cancelled = `${match[1]}_3`;
      await scancel(cancelled);
    });
    assert.ok(run.matched, run.stderr);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /executor slurm/);
    assert.match(
      run.stderr,
      new RegExp(`resubmit\\s+score#4/4\\s+job ${cancelled} CANCELLED; attempt 2 of 2`),
    );
    assert.match(
      run.stderr,
      /slurm\s+score#4\/4\s+job \d+_0 submitted \(log .*wave-2\/task-0\.log\)/,
    );
    assert.match(run.stderr, /slurm\s+score#1\/4\s+job \d+_0 COMPLETED/);

    const score = scoreOf(await latestRecord(dir));
    assert.equal(score.state, "ran");
    assert.deepEqual(score.shards!.map((shard) => shard.state), ["ran", "ran", "ran", "ran"]);
    assert.equal(score.shards![3].attempts, 2);
    assert.equal((await readLock(dir)).nodes.score.key, (await readLock(local)).nodes.score.key);
    assert.deepEqual(await artifactFiles(dir, "score"), await artifactFiles(local, "score"));
  },
);

Deno.test(
  `--executor slurm: a shard cancelled past executor.retries fails the run, naming the shard and its log file${SKIP}`,
  { ignore: !CLUSTER.ok },
  async () => {
    const dir = await storeWithBase("slurm-cancelled");
    const child = spawnSlurmRun([
      ...SHARDED,
      "--set",
      "executor.retries=0",
      "--store",
      `${dir}/store`,
    ]);
    const run = await watch(
      child,
      /score#4\/4\s+job (\d+)_3 submitted/,
      (match) => scancel(`${match[1]}_3`),
    );
    assert.equal(run.code, 1, run.stderr);
    // Cancelled while pending, it never started: the message says its log was not written.
    const failed = run.stderr.match(
      /failed\s+score#4\/4\s+SLURM job \d+_3 CANCELLED; log: (\S+\/wave-1\/task-3\.log) \(not written: the task never started\)/,
    );
    assert.ok(failed, run.stderr);
    assert.ok((await Deno.stat(failed[1].replace(/task-3\.log$/, "tasks.json"))).isFile);
    assert.match(run.stderr, /failed\s+score\s+shard score#4\/4 failed: SLURM job \d+_3 CANCELLED/);
    const score = scoreOf(await latestRecord(dir));
    assert.deepEqual(score.shards!.map((shard) => shard.state), ["ran", "ran", "ran", "failed"]);
  },
);

Deno.test(
  `--executor slurm: the jobs of a run killed with SIGKILL are cancelled by the next run before it submits its own${SKIP}`,
  { ignore: !CLUSTER.ok },
  async () => {
    const dir = await storeWithBase("slurm-orphans");
    const args = [...SHARDED, "--set", "executor.maxRunning=1", "--store", `${dir}/store`];
    const first = spawnSlurmRun(args);
    let job = "";
    const killed = await watch(first, /score#4\/4\s+job (\d+)_3 submitted/, (match) => {
      job = match[1];
      first.kill("SIGKILL");
      return Promise.resolve();
    });
    assert.ok(killed.matched, killed.stderr);
    const next = await watch(spawnSlurmRun(args), /$^/, () => Promise.resolve());
    assert.equal(next.code, 0, next.stderr);
    assert.match(
      next.stderr,
      new RegExp(
        `cancelled SLURM job ${job} left running by run \\S+, which ended without cancelling them`,
      ),
    );
    assert.equal(scoreOf(await latestRecord(dir)).state, "ran");
  },
);

Deno.test("--executor slurm where starting sbatch is not permitted is one line naming the flag, exit 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...WORKER_FLAGS, "pipeline/cli.ts", "stage", "score", "--executor", "slurm"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(
    decoder.decode(out.stderr).trim(),
    "sent stage: --executor slurm starts sbatch, squeue, sacct, scancel, and starting sbatch is " +
      "not permitted; run the CLI with --allow-run=sbatch,squeue,sacct,scancel (see the README's " +
      "section on clusters)",
  );
});

Deno.test("sbatchArgs() turns the executor.* keys into sbatch flags, leaving out the empty ones", () => {
  const config = {
    partition: "",
    time: "",
    gpusPerTask: 0,
    cpusPerTask: 1,
    maxRunning: 0,
    sbatchFlags: [],
    retries: 2,
    pollSeconds: 5,
  };
  assert.deepEqual(
    sbatchArgs(config, 4, "/s/wave-1", "/p", { node: "evaluate[policy=base,seed=1]" }),
    [
      "--parsable",
      "--array=0-3",
      "--job-name=sent-evaluate_policy=base_seed=1",
      "--output=/s/wave-1/task-%a.log",
      "--chdir=/p",
      "--cpus-per-task=1",
      "/s/wave-1/job.sh",
    ],
  );
  const full = {
    ...config,
    partition: "gpu",
    time: "04:00:00",
    gpusPerTask: 1,
    cpusPerTask: 8,
    maxRunning: 16,
  };
  assert.deepEqual(
    sbatchArgs({ ...full, sbatchFlags: ["--account=lab", "--qos=normal"] }, 64, "/s", "/p", {
      node: "score",
    }),
    [
      "--parsable",
      "--array=0-63%16",
      "--job-name=sent-score",
      "--output=/s/task-%a.log",
      "--chdir=/p",
      "--cpus-per-task=8",
      "--partition=gpu",
      "--time=04:00:00",
      "--gpus-per-task=1",
      "--account=lab",
      "--qos=normal",
      "/s/job.sh",
    ],
  );
});
