/**
 * State files beside the store: a corrupt lock file, run record or store marker is an error that
 * names the file and how to recover (never read as "missing"), and the default store's lock
 * file lives at the project root, where it can be committed.
 */

import assert from "node:assert/strict";
import { statePaths } from "../../pipeline/records.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, sent, sentOk } from "./_harness.ts";

Deno.test("a corrupt sent.lock.json stops status, reproduce and gc with one line naming the file and the way out", async () => {
  const dir = await makeTestDir("records-lock");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const artifacts = [...Deno.readDirSync(`${dir}/store`)].length;
  for (const text of ["{ half", '{"format":1,"nodes":{"source":{"stage":"source"}}}', "[]"]) {
    await Deno.writeTextFile(`${dir}/sent.lock.json`, text);
    for (const command of ["status", "reproduce", "gc"]) {
      const result = await sent([command, ...store]);
      assert.equal(result.code, 2, `${command}: ${result.stdout}${result.stderr}`);
      assert.match(
        result.stderr,
        new RegExp(
          `^sent ${command}: ${dir}/sent\\.lock\\.json is not a valid lock file \\(.+\\); restore it \\(git checkout\\) or delete it`,
        ),
      );
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  }
  assert.equal([...Deno.readDirSync(`${dir}/store`)].length, artifacts, "gc removed nothing");
});

Deno.test("a corrupt run record stops gc with one line naming the record", async () => {
  const dir = await makeTestDir("records-run");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const record = await latestRecord(dir);
  const path = `${dir}/runs/${record.id}.json`;
  await Deno.writeTextFile(path, '{"id": 3}');
  const result = await sent(["gc", ...store]);
  assert.equal(result.code, 2, result.stdout + result.stderr);
  assert.match(
    result.stderr,
    new RegExp(`^sent gc: run record ${path} is not valid \\(.+\\); delete it`),
  );
});

Deno.test("a corrupt store.json is an error naming the file", async () => {
  const dir = await makeTestDir("records-marker");
  await sentOk(["reproduce", "--store", `${dir}/store`]);
  await Deno.writeTextFile(`${dir}/store/store.json`, "{");
  const result = await sent(["status", "--store", `${dir}/store`]);
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^sent status: .*\/store\/store\.json is not a valid store marker \(.+\); delete it and run again/,
  );
});

Deno.test("statePaths() puts the default store's lock file at the project root, and any other store's beside it", () => {
  assert.deepEqual(statePaths("/p"), {
    store: "/p/.sent/store",
    stateDir: "/p/.sent",
    lockFile: "/p/sent.lock.json",
  });
  assert.deepEqual(statePaths("/p", "/p/.sent/store/"), statePaths("/p"));
  assert.deepEqual(statePaths("/p", "runs/a/store"), {
    store: "/p/runs/a/store",
    stateDir: "/p/runs/a",
    lockFile: "/p/runs/a/sent.lock.json",
  });
  assert.deepEqual(statePaths("/p", "/data/../x/store").store, "/x/store");
});
