/** The benchmark harness: suite registry, JSON shape, missing suites. */

import assert from "node:assert/strict";
import type { SuiteReport } from "../../pipeline/bench.ts";
import { WORKER_FLAGS } from "../../pipeline/flags.ts";
import { ROOT } from "./_harness.ts";

/** The bench task's permissions: the pipeline set, with starting any process. */
const BENCH_FLAGS = [...WORKER_FLAGS, "--allow-run"];

async function bench(args: string[], options: { flags?: string[]; path?: string } = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.flags ?? BENCH_FLAGS), "pipeline/bench.ts", ...args],
    cwd: ROOT,
    env: options.path === undefined ? {} : { PATH: options.path },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("bench.ts pipeline --json --quick prints one {suite, machine, results} object", async () => {
  const result = await bench(["pipeline", "--json", "--quick"]);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.equal(lines.length, 1);
  const report: SuiteReport = JSON.parse(lines[0]);
  assert.equal(report.suite, "pipeline");
  assert.deepEqual(Object.keys(report.machine), ["cpu", "cores", "memoryGiB", "os", "deno", "ort"]);
  assert.deepEqual(report.results.map((r) => [r.name, r.unit]), [
    ["pipeline.cached_reproduce_s", "s"],
    ["pipeline.hash_mb_s", "MB/s"],
  ]);
  for (const r of report.results) {
    assert.ok(r.value > 0 && r.reference! > 0 && r.ratio! > 0 && r.target, JSON.stringify(r));
  }
});

Deno.test("bench.ts pipeline measures cached_reproduce_s with no deno on PATH (as under npx)", async () => {
  const result = await bench(["pipeline", "--json", "--quick"], { path: "/nonexistent" });
  assert.equal(result.code, 0, result.stderr);
  const report: SuiteReport = JSON.parse(result.stdout.trim());
  assert.ok(report.results.some((r) => r.name === "pipeline.cached_reproduce_s" && r.value > 0));
});

Deno.test("bench.ts fails, naming the figure, when it may not start processes, rather than skip it", async () => {
  const result = await bench(["pipeline", "--json", "--quick"], { flags: [...WORKER_FLAGS] });
  assert.notEqual(result.code, 0);
  assert.match(
    result.stderr,
    /bench pipeline: pipeline\.cached_reproduce_s cannot be measured: starting .* is not permitted; run it with --allow-run \(deno task bench does\)/,
  );
  assert.doesNotMatch(result.stderr, /skipped/);
});

Deno.test("bench.ts names unknown suites and lists the registered ones", async () => {
  const result = await bench(["pipelin"]);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /bench: unknown suite "pipelin"; suites: pipeline, engine, model/);
});
