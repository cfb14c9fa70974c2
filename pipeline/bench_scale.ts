/**
 * Benchmark suite `scale`: what sharding costs and what the local worker pool gains, measured
 * through the real CLI (`pipeline/cli.ts`) on the tiny preset, with the base warm-up cut to 50
 * steps (the weights do not matter here, only the work), every run with `runtime.threads=2`.
 *
 * - `scale.shard_overhead`: wall time of the score stage split into 8 shards, run one after
 *   another in one process (`--jobs 1`), ÷ the unsharded stage. Target ≤ 1.05. The reference is
 *   the unsharded stage's seconds.
 * - `scale.jobs2_speedup`: score-stage wall time with `--jobs 1` (unsharded, two ORT threads) ÷
 *   with `--jobs 2` (two shards, each in its own worker with one thread). Reported, no target.
 * - `scale.jobs2_speedup_train`: the same for two independent train nodes (grpo and sent, on a
 *   256-problem training set so that each trains 16 steps): the wall time of `stage train
 *   --force` with `--jobs 1` ÷ with `--jobs 2`, start-up included.
 *
 * A node's wall time is the run record's: for a sharded node, from the start of its first shard
 * to the merge's commit (worker start-up included). Each figure is the fastest of its repeats
 * (one with `--quick`, two otherwise, the variants taking turns), since on a shared machine
 * other load only ever adds time.
 *
 * @module
 */

import type { BenchResult } from "./bench_types.ts";
import { PIPELINE_FLAGS } from "./flags.ts";
import type { RunRecord } from "./records.ts";

/** Settings of every run: the tiny preset with a short warm-up and a fixed thread budget. */
const COMMON = ["--set", "base.warmup.steps=50", "--set", "runtime.threads=2"];
/** The train measurement's smaller training set (dataset, base, score and curriculum follow). */
const TRAIN_SET = ["--set", "data.trainProblems=256", "--set", "train.methods=[grpo,sent]"];

/**
 * Run the suite.
 *
 * @param opts `quick`: one repeat of each variant instead of two.
 * @returns The measured figures.
 */
export async function run(opts: { quick: boolean }): Promise<BenchResult[]> {
  const deno = Deno.execPath();
  if ((await Deno.permissions.query({ name: "run", command: deno })).state !== "granted") {
    throw new Error(
      `scale.shard_overhead cannot be measured: starting ${deno} is not permitted; ` +
        "run it with --allow-run (deno task bench does)",
    );
  }
  const repeats = opts.quick ? 1 : 2;
  await Deno.mkdir(".sent/tmp", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: ".sent/tmp", prefix: "bench-scale-" });
  try {
    const score = `${dir}/score`;
    await cli(["stage", "base", "--store", `${score}/store`, ...COMMON]);
    const variants = {
      whole: ["--jobs", "1"],
      eight: ["--jobs", "1", "--set", "score.shards=8"],
      pool: ["--jobs", "2", "--set", "score.shards=2"],
    };
    const seconds: Record<keyof typeof variants, number[]> = { whole: [], eight: [], pool: [] };
    for (let i = 0; i < repeats; i++) {
      for (const [name, flags] of Object.entries(variants) as [keyof typeof variants, string[]][]) {
        await cli(["stage", "score", "--force", "--store", `${score}/store`, ...COMMON, ...flags]);
        seconds[name].push(nodeSeconds(await latestRecord(score), "score"));
      }
    }

    const train = `${dir}/train`;
    await cli(["stage", "curriculum", "--store", `${train}/store`, ...COMMON, ...TRAIN_SET]);
    const trainSeconds: Record<string, number[]> = { one: [], two: [] };
    for (let i = 0; i < repeats; i++) {
      for (const [name, jobs] of [["one", "1"], ["two", "2"]]) {
        const args = ["stage", "train", "--force", "--store", `${train}/store`, ...COMMON];
        trainSeconds[name].push(await cli([...args, ...TRAIN_SET, "--jobs", jobs]));
      }
    }

    const whole = Math.min(...seconds.whole);
    const eight = Math.min(...seconds.eight);
    const pool = Math.min(...seconds.pool);
    const one = Math.min(...trainSeconds.one);
    const two = Math.min(...trainSeconds.two);
    return [
      {
        name: "scale.shard_overhead",
        value: round(eight / whole, 3),
        unit: "× (8 shards ÷ unsharded)",
        reference: round(whole, 2),
        ratio: round(eight / whole, 3),
        target: "≤ 1.05",
      },
      {
        name: "scale.jobs2_speedup",
        value: round(whole / pool, 2),
        unit: "× (score, --jobs 1 ÷ --jobs 2)",
        reference: round(whole, 2),
        ratio: round(whole / pool, 2),
      },
      {
        name: "scale.jobs2_speedup_train",
        value: round(one / two, 2),
        unit: "× (two train nodes, --jobs 1 ÷ --jobs 2)",
        reference: round(one, 2),
        ratio: round(one / two, 2),
      },
    ];
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Run the CLI; its wall time in seconds. Throws with its output when it fails. */
async function cli(args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...PIPELINE_FLAGS, "pipeline/cli.ts", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  if (out.code !== 0) {
    const decoder = new TextDecoder();
    throw new Error(
      `sent ${args.join(" ")} failed:\n${decoder.decode(out.stdout)}${decoder.decode(out.stderr)}`,
    );
  }
  return seconds;
}

async function latestRecord(stateDir: string): Promise<RunRecord> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${stateDir}/runs`)) names.push(entry.name);
  names.sort();
  return JSON.parse(await Deno.readTextFile(`${stateDir}/runs/${names[names.length - 1]}`));
}

function nodeSeconds(record: RunRecord, node: string): number {
  const outcome = record.nodes.find((n) => n.node === node);
  if (!outcome || !["ran", "recomputed"].includes(outcome.state)) {
    throw new Error(`run ${record.id}: ${node} did not run (${outcome?.state ?? "absent"})`);
  }
  return outcome.seconds;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
