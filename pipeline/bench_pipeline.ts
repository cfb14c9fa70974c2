/**
 * Benchmark suite `pipeline`:
 *
 * - `pipeline.cached_reproduce_s`: wall time of `reproduce` of a 22-node DAG whose artifacts are
 *   all cached, in a fresh `deno` process, start-up included (median of several runs). The
 *   reference is the same machine's start-up of a `deno run` of an empty script with the same
 *   flags, so the ratio shows what the engine adds. Target < 1.5 s.
 * - `pipeline.hash_mb_s`: sha256 of a 100 MB artifact file streamed from disk, as `--verify`
 *   and commits do. The reference is the in-memory sha256 rate of the same bytes (no I/O).
 *   Target ≥ 500 MB/s.
 *
 * The subprocesses are this process's own Deno (`Deno.execPath()`, so `deno` need not be on
 * `PATH`, as under `npx -y deno@2.9.6 task bench`), which needs `--allow-run`; without it the
 * suite fails, naming the figure, rather than leave it out.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { BenchResult } from "./bench_types.ts";
import { PIPELINE_FLAGS } from "./flags.ts";
import { sha256File } from "./hash.ts";

/** Permissions of the `pipeline` set in deno.json, spelled out (no experimental-config warning). */
export { PIPELINE_FLAGS };

/**
 * Run the suite.
 *
 * @param opts `quick`: fewer repetitions and a 32 MB file.
 * @returns The measured figures.
 */
export async function run(opts: { quick: boolean }): Promise<BenchResult[]> {
  await Deno.mkdir(".sent/tmp", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: ".sent/tmp", prefix: "bench-pipeline-" });
  try {
    const results: BenchResult[] = [];
    results.push(await cachedReproduce(dir, opts.quick ? 3 : 7));
    results.push(await hashRate(dir, opts.quick ? 32 : 100, opts.quick ? 2 : 5));
    return results;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function cachedReproduce(dir: string, repeats: number): Promise<BenchResult> {
  const deno = Deno.execPath();
  if ((await Deno.permissions.query({ name: "run", command: deno })).state !== "granted") {
    throw new Error(
      `pipeline.cached_reproduce_s cannot be measured: starting ${deno} is not permitted; ` +
        "run it with --allow-run (deno task bench does)",
    );
  }
  const timeRun = async (args: string[]) => {
    const t0 = performance.now();
    const out = await new Deno.Command(deno, {
      args,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    })
      .output();
    const seconds = (performance.now() - t0) / 1000;
    if (out.code !== 0) {
      throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
    }
    return seconds;
  };
  const reproduce = [
    "run",
    ...PIPELINE_FLAGS,
    "pipeline/_bench_cli.ts",
    "reproduce",
    "--store",
    `${dir}/store`,
  ];
  await timeRun(reproduce); // fill the store
  await Deno.writeTextFile(`${dir}/empty.ts`, "\n");
  const empty = ["run", ...PIPELINE_FLAGS, `${dir}/empty.ts`];
  await timeRun(empty); // warm the module cache
  const ours: number[] = [];
  const reference: number[] = [];
  for (let i = 0; i < repeats; i++) {
    ours.push(await timeRun(reproduce));
    reference.push(await timeRun(empty));
  }
  return medianAgainstReference(ours, reference, {
    name: "pipeline.cached_reproduce_s",
    unit: "s",
    digits: 3,
    target: "< 1.5 s",
  });
}

async function hashRate(dir: string, megabytes: number, repeats: number): Promise<BenchResult> {
  const bytes = new Uint8Array(megabytes * 1_000_000);
  for (let offset = 0; offset < bytes.length; offset += 65_536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(bytes.length, offset + 65_536)));
  }
  const path = `${dir}/artifact.bin`;
  await Deno.writeFile(path, bytes);
  const streamed: number[] = [];
  const inMemory: number[] = [];
  for (let i = 0; i < repeats; i++) {
    let t0 = performance.now();
    await sha256File(path);
    streamed.push(megabytes / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    createHash("sha256").update(bytes).digest("hex");
    inMemory.push(megabytes / ((performance.now() - t0) / 1000));
  }
  return medianAgainstReference(streamed, inMemory, {
    name: "pipeline.hash_mb_s",
    unit: "MB/s",
    digits: 0,
    target: "≥ 500 MB/s",
  });
}

/** The medians of `ours` and `reference`, rounded to `digits`, and their ratio (2 digits). */
function medianAgainstReference(
  ours: readonly number[],
  reference: readonly number[],
  figure: { name: string; unit: string; digits: number; target: string },
): BenchResult {
  const value = median(ours);
  const ref = median(reference);
  return {
    name: figure.name,
    value: round(value, figure.digits),
    unit: figure.unit,
    reference: round(ref, figure.digits),
    ratio: round(value / ref, 2),
    target: figure.target,
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
