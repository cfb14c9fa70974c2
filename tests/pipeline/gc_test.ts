/**
 * gc: artifacts referenced by neither the lock file nor recent successful runs are removed; gc
 * touches nothing but artifacts, and only in a directory marked as a store.
 */

import assert from "node:assert/strict";
import { collectGarbage } from "../../pipeline/gc.ts";
import type { RunRecord } from "../../pipeline/records.ts";
import { ArtifactStore } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, nodesIn, readLock, sent, sentOk } from "./_harness.ts";

/** Every path below a directory, with file sizes, to show that nothing changed. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string) => {
    for await (const entry of Deno.readDir(`${dir}${sub}`)) {
      const rel = `${sub}/${entry.name}`;
      if (entry.isDirectory) {
        out.push(`${rel}/`);
        await walk(rel);
      } else out.push(`${rel} ${(await Deno.stat(`${dir}${rel}`)).size}`);
    }
  };
  await walk("");
  return out.sort();
}

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

Deno.test("gc refuses, exit 2, a directory that is not a store, and changes nothing in it", async () => {
  const dir = await makeTestDir("gc-foreign");
  // The layout of .sent/: a store, its run records and lock file, and other folders.
  await sentOk(["reproduce", "--store", `${dir}/state/store`]);
  await Deno.mkdir(`${dir}/state/tmp/a/b`, { recursive: true });
  await Deno.writeTextFile(`${dir}/state/tmp/a/b/notes.txt`, "keep me");
  const before = await snapshot(`${dir}/state`);

  for (const args of [["gc"], ["gc", "--dry-run"]]) {
    const result = await sent([...args, "--store", `${dir}/state`]);
    assert.equal(result.code, 2, result.stdout + result.stderr);
    assert.match(
      result.stderr,
      /^sent gc: --store .*\/state is not an artifact store: it has no store\.json and holds other things \(runs\/, sent\.lock\.json, store\/, tmp\/\)/,
    );
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
  const missing = await sent(["gc", "--store", `${dir}/nothing-here`]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nothing-here does not exist/);
  assert.deepEqual(await snapshot(`${dir}/state`), before);

  // reproduce refuses it too, rather than writing runs/ and a lock file beside it.
  const run = await sent(["reproduce", "--store", `${dir}/state`]);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /is not an artifact store/);
  assert.deepEqual(await snapshot(`${dir}/state`), before);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/state/store/store.json`)).format, 1);
});

Deno.test("gc removes only artifacts: a folder without a valid manifest for its own key stays", async () => {
  const dir = await makeTestDir("gc-strays");
  const store = `${dir}/store`;
  await sentOk(["reproduce", "--store", store, "--set", "fixture.scale=2"]);
  await sentOk(["reproduce", "--store", store, "--set", "fixture.scale=3"]);
  const lock = await readLock(dir);
  const { key } = lock.nodes.source;
  const other = "0".repeat(64);
  // A folder with no manifest, one whose manifest names another key, and one that is not JSON.
  await Deno.mkdir(`${store}/train/ab/notes`, { recursive: true });
  await Deno.writeTextFile(`${store}/train/ab/notes/todo.txt`, "mine");
  await Deno.mkdir(`${store}/source/00/${other}`, { recursive: true });
  await Deno.copyFile(
    `${store}/source/${key.slice(0, 2)}/${key}/manifest.json`,
    `${store}/source/00/${other}/manifest.json`,
  );
  await Deno.mkdir(`${store}/scale/ff/${"f".repeat(64)}`, { recursive: true });
  await Deno.writeTextFile(`${store}/scale/ff/${"f".repeat(64)}/manifest.json`, "{ half");
  await Deno.writeTextFile(`${store}/README.txt`, "about this store");

  const result = await sentOk(["gc", "--store", store]);
  // Nothing references the scale=2 artifacts once the records are pushed out (keepRuns 1).
  assert.match(result.stdout, /freed .*; kept 22 referenced artifacts/);
  for (const stray of ["train/ab/notes", `source/00/${other}`, `scale/ff/${"f".repeat(64)}`]) {
    assert.match(result.stdout, new RegExp(`left alone \\(not an artifact\\): ${stray}`));
  }
  assert.equal(await Deno.readTextFile(`${store}/train/ab/notes/todo.txt`), "mine");
  assert.ok((await Deno.stat(`${store}/source/00/${other}/manifest.json`)).isFile);
  assert.equal(await Deno.readTextFile(`${store}/README.txt`), "about this store");
  const removed = await collectGarbage(new ArtifactStore(store), { stateDir: dir, keepRuns: 1 });
  assert.equal(removed.removed.length, 10);
  assert.equal(await Deno.readTextFile(`${store}/train/ab/notes/todo.txt`), "mine");
});

Deno.test("gc keeps what the 5 latest successful runs used, however many failed runs came after", async () => {
  const dir = await makeTestDir("gc-failed");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=2"]);
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=3"]);
  // Five later runs that failed before running anything.
  const last = await latestRecord(dir);
  for (let i = 0; i < 5; i++) {
    const failed: RunRecord = { ...last, id: `99991231T00000${i}.000Z-failed`, status: "failed" };
    failed.nodes = [];
    await Deno.writeTextFile(`${dir}/runs/${failed.id}.json`, JSON.stringify(failed));
  }
  const result = await sentOk(["gc", ...store]);
  assert.match(result.stdout, /freed 0 B; kept 22 referenced artifacts/);
  assert.equal((await new ArtifactStore(`${dir}/store`).list()).length, 22);
});
