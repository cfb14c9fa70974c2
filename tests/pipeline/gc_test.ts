/** gc: artifacts referenced by neither the lock file nor recent run records are removed. */

import assert from "node:assert/strict";
import { collectGarbage } from "../../pipeline/gc.ts";
import { ArtifactStore } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, nodesIn, sentOk } from "./_harness.ts";

Deno.test("collectGarbage() removes artifacts only older runs referenced and keeps the lock file's", async () => {
  const dir = await makeTestDir("gc");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=2"]);
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=3"]);
  const artifacts = new ArtifactStore(`${dir}/store`);
  assert.equal((await artifacts.list()).length, 22);

  const dry = await sentOk(["gc", ...store, "--dry-run"]);
  assert.match(dry.stdout, /would free 0 B; kept 22 referenced artifacts/);

  const result = await collectGarbage(artifacts, { stateDir: dir, keepRuns: 1 });
  assert.equal(result.removed.length, 10);
  assert.equal(result.kept, 12);
  assert.ok(result.removed.every((item) => /^(scale|train|evaluate|summary)\//.test(item.what)));

  const status = await sentOk(["status", ...store, "--set", "fixture.scale=3"]);
  assert.match(status.stdout, /12 nodes: 12 cached/);
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=2"]);
  assert.equal(nodesIn(await latestRecord(dir)).length, 10);
});
