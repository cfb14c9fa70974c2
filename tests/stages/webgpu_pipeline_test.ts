/**
 * The real DAG with `--device webgpu` (SwiftShader where the machine has no Vulkan driver) on the
 * test preset reduced to two methods: base, score, train and evaluate run on the GPU EP with the
 * trainer's state resident on the device, and their metrics match a CPU run of the same config.
 *
 * Why these tolerances: CPU and WebGPU kernels round differently (about 1e-6 relative), so a
 * sampled token can in principle flip; on this preset it stays the same almost everywhere. Every
 * reward of the test preset is −1 (its tiny policy solves nothing), so the advantages are 0 and
 * the gradient is rounding noise (SENT's |log r| term pushes on r − 1 ≈ 1e-7 with the sign of
 * the noise), which Adam then normalises: `grad_norm` is compared with an absolute tolerance,
 * and the few samples of `sent` that differ are counted, not required to be equal.
 *
 * (`--device cuda` without ORT's CUDA provider failing before any stage runs is tested in
 * tests/pipeline/device_test.ts.)
 */

import assert from "node:assert/strict";
import { makeTestDir } from "../_tmp.ts";
import { sent } from "../pipeline/_harness.ts";

const CLI = { script: "pipeline/cli.ts" };
const METHODS = ["grpo", "sent"];
const REDUCED = ["--preset", "test", "--set", `train.methods=[${METHODS.join(",")}]`];

/** Timing columns: they differ by design. */
const TIMING = /^seconds\/|tokens_per_s$|^step_seconds$/;

type Row = Record<string, unknown>;

async function runResults(root: string, device: string): Promise<string> {
  const store = `${root}/${device}`;
  // Up to `results` (every train and evaluate node); the report's rendering needs no device.
  const out = await sent(
    ["stage", "results", ...REDUCED, "--device", device, "--store", store],
    CLI,
  );
  assert.equal(out.code, 0, out.stdout + out.stderr);
  return store;
}

/** The one artifact folder of a stage whose params match, in a store. */
async function artifact(store: string, stage: string, summary: (s: Row) => boolean) {
  for await (const shard of Deno.readDir(`${store}/${stage}`)) {
    for await (const entry of Deno.readDir(`${store}/${stage}/${shard.name}`)) {
      const dir = `${store}/${stage}/${shard.name}/${entry.name}`;
      const s = await Deno.readTextFile(`${dir}/summary.json`).then(JSON.parse, () => null);
      if (s && summary(s)) return { dir, summary: s as Row };
    }
  }
  throw new Error(`no ${stage} artifact matching in ${store}`);
}

async function readRows(path: string): Promise<Row[]> {
  return (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
}

async function results(store: string) {
  for await (const shard of Deno.readDir(`${store}/results`)) {
    for await (const entry of Deno.readDir(`${store}/results/${shard.name}`)) {
      return JSON.parse(
        await Deno.readTextFile(`${store}/results/${shard.name}/${entry.name}/results.json`),
      );
    }
  }
  throw new Error(`no results artifact in ${store}`);
}

function close(a: unknown, b: unknown, atol: number, rtol: number): boolean {
  if (typeof a !== "number" || typeof b !== "number") return a === b;
  return Math.abs(a - b) <= atol + rtol * Math.abs(a);
}

Deno.test("stage results --device webgpu trains and evaluates the reduced test preset with the trainer state on the device, matching a CPU run's metrics within tolerance", async () => {
  const root = await makeTestDir("webgpu-dag");
  const cpu = await runResults(root, "cpu");
  const gpu = await runResults(root, "webgpu");

  for (const method of METHODS) {
    const byMethod = (s: Row) => s.method === method;
    const c = await artifact(cpu, "train", byMethod);
    const g = await artifact(gpu, "train", byMethod);
    assert.equal(c.summary.resident, false, `${method} on cpu: host state`);
    assert.equal(g.summary.resident, true, `${method} on webgpu: state resident on the device`);
    assert.equal(g.summary.updates, c.summary.updates);
    // The trained policy is a complete HF folder on either device.
    await Deno.stat(`${g.dir}/policy/onnx/model.onnx`);

    const cRows = await readRows(`${c.dir}/metrics.jsonl`);
    const gRows = await readRows(`${g.dir}/metrics.jsonl`);
    assert.equal(gRows.length, cRows.length, `${method}: steps`);
    cRows.forEach((row, i) => {
      for (const [key, value] of Object.entries(row)) {
        if (TIMING.test(key)) continue;
        const [atol, rtol] = key === "grad_norm" ? [1e-2, 0] : [1e-3, 1e-2];
        assert.ok(
          close(value, gRows[i][key], atol, rtol),
          `${method} step ${i} ${key}: cpu ${value}, webgpu ${gRows[i][key]}`,
        );
      }
    });
  }

  // Evaluation: the same Avg@k, Pass@k and greedy scores, and almost every sample the same length.
  const c = await results(cpu);
  const g = await results(gpu);
  for (const [set, policies] of Object.entries(c.sets as Record<string, Row>)) {
    for (const [policy, entry] of Object.entries(policies as Record<string, Row>)) {
      const cs = (entry.seeds as Record<string, Row>)["1"];
      const gs = (g.sets[set][policy].seeds as Record<string, Row>)["1"];
      const where = `${set} ${policy}`;
      const problems = cs.problems as { lengths: number[]; c: number }[];
      const onePercent = 100 / problems.length; // one problem's worth, in percent
      for (const metric of ["pass@k", "avg@k"]) {
        for (const [k, v] of Object.entries(cs[metric] as Record<string, number>)) {
          const w = (gs[metric] as Record<string, number>)[k];
          assert.ok(close(v, w, onePercent, 0), `${where} ${metric}[${k}]: ${v} vs ${w}`);
        }
      }
      assert.ok(close(cs.greedy, gs.greedy, onePercent, 0), `${where} greedy`);
      const gProblems = gs.problems as { lengths: number[] }[];
      const lengths = problems.flatMap((p) => p.lengths);
      const same = problems.flatMap((p, i) =>
        p.lengths.map((n, j) => n === gProblems[i].lengths[j])
      )
        .filter(Boolean).length;
      assert.ok(same >= 0.8 * lengths.length, `${where}: ${same}/${lengths.length} same lengths`);
    }
  }
});
