/**
 * Paths through symlinks: a run resolves the real path of its store and of every config key that
 * names a path (data.dir, base.checkpoint), including the symlinks inside such a folder, and
 * refuses those that leave the folders deno.json lets the pipeline read or write.
 */

import assert from "node:assert/strict";
import { isInsideReal, permitsOf, realPathOf } from "../../pipeline/permits.ts";
import { makeTestDir } from "../_tmp.ts";
import { sent, symlink } from "./_harness.ts";

Deno.test("realPathOf() follows symlinks, dangling ones and missing tails included", async () => {
  const dir = await makeTestDir("paths-real");
  await Deno.mkdir(`${dir}/real`);
  await symlink(`${dir}/real`, `${dir}/link`);
  await symlink("/nonexistent-sent/place", `${dir}/dangling`);
  assert.equal(await realPathOf(`${dir}/link/a/b`), `${dir}/real/a/b`);
  assert.equal(await realPathOf(`${dir}/dangling/store`), "/nonexistent-sent/place/store");
  const permits = permitsOf("pipeline");
  assert.equal(await isInsideReal(`${dir}/link/x`, permits.write), true);
  assert.equal(await isInsideReal(`${dir}/dangling/store`, permits.write), false);
});

Deno.test("a dataset folder with a symlink out of the readable folders stops the run before any stage", async () => {
  const dir = await makeTestDir("paths-data");
  await Deno.mkdir(`${dir}/datasets`);
  await symlink("/etc/hostname", `${dir}/datasets/aime24.jsonl`);
  await symlink("/etc", `${dir}/etc`);
  const cases: [string, RegExp][] = [
    [
      `${dir}/datasets`,
      /^sent stage: config key data\.dir = .*\/datasets: aime24\.jsonl is a symlink to \/etc\/hostname, outside the folders the pipeline may read \(the project folder [^)]*\)$/,
    ],
    [
      `${dir}/etc`,
      /^sent stage: config key data\.dir = .*\/etc resolves to \/etc, outside the folders the pipeline may read/,
    ],
  ];
  for (const [dataDir, pattern] of cases) {
    const result = await sent([
      "stage",
      "dataset",
      "--store",
      `${dir}/store`,
      "--set",
      "data.evalSets=[aime24]",
      "--set",
      `data.dir=${dataDir}`,
    ], { script: "pipeline/cli.ts" });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr.trim(), pattern);
    await assert.rejects(Deno.stat(`${dir}/runs`), Deno.errors.NotFound, "no run started");
  }
});

Deno.test("a --store reached through a symlink out of the writable folders is refused, nothing written", async () => {
  const dir = await makeTestDir("paths-store");
  await symlink("/etc", `${dir}/to-etc`);
  await symlink(`/tmp/sent-no-such-dir-${crypto.randomUUID()}`, `${dir}/dangling`);
  for (const store of [`${dir}/to-etc`, `${dir}/to-etc/store`, `${dir}/dangling/store`]) {
    const result = await sent(["reproduce", "--store", store]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr.trim(),
      /^sent reproduce: --store .* resolves to \/(etc|tmp)\S*, outside the folders the pipeline may write \(the project folder [^)]*\); choose a store inside them$/,
    );
  }
  await assert.rejects(Deno.stat(`${dir}/runs`), Deno.errors.NotFound);
});
