/**
 * The store lock: an OS-level lock on `<store>/.lock` that the kernel drops when its process
 * dies, so no live run can lose it (however long its JS thread is busy) and no dead run keeps it.
 */

import assert from "node:assert/strict";
import { acquireStoreLock, describeHolder, type LockHolder } from "../../pipeline/store_lock.ts";
import { makeTestDir } from "../_tmp.ts";
import { PIPELINE_FLAGS, ROOT, sent, waitForFile } from "./_harness.ts";

const DENO = Deno.execPath();

Deno.test("acquireStoreLock() writes the holder into the lock file and release() clears it", async () => {
  const path = `${await makeTestDir("lock-basic")}/store/.lock`;
  const lock = await acquireStoreLock(path, { command: "reproduce" });
  const holder: LockHolder = JSON.parse(await Deno.readTextFile(path));
  assert.equal(holder.pid, Deno.pid);
  assert.equal(holder.command, "reproduce");
  await lock.release();
  assert.equal(await Deno.readTextFile(path), "", "released: the file stays, with no holder");
  const again = await acquireStoreLock(path, { command: "again" });
  await again.release();
});

Deno.test("acquireStoreLock() waits while a live holder has the lock, saying who holds it", async () => {
  const path = `${await makeTestDir("lock-wait")}/.lock`;
  const first = await acquireStoreLock(path, { command: "first" });
  const waits: (LockHolder | null)[] = [];
  let acquired = false;
  const second = acquireStoreLock(path, {
    command: "second",
    onWait: (holder) => waits.push(holder),
  }).then((lock) => {
    acquired = true;
    return lock;
  });
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(acquired, false);
  assert.equal(waits.length, 1);
  assert.equal(waits[0]?.command, "first");
  assert.match(describeHolder(waits[0]), /^pid \d+ on host .* \("first", since /);
  await first.release();
  const lock = await second;
  assert.equal(JSON.parse(await Deno.readTextFile(path)).command, "second");
  await lock.release();
});

Deno.test("acquireStoreLock() takes a lock left by a holder that died at once, and names that holder", async () => {
  const path = `${await makeTestDir("lock-dead")}/.lock`;
  const dead: LockHolder = {
    pid: 999999,
    hostname: "elsewhere",
    command: "reproduce",
    startedAt: "2020-01-01T00:00:00Z",
  };
  await Deno.writeTextFile(path, JSON.stringify(dead));
  const abandoned: (LockHolder | null)[] = [];
  const t0 = performance.now();
  const lock = await acquireStoreLock(path, {
    command: "new",
    onAbandoned: (holder) => abandoned.push(holder),
  });
  assert.ok(performance.now() - t0 < 1_000);
  assert.deepEqual(abandoned, [dead]);
  assert.equal(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
  await lock.release();
});

Deno.test("a run waits for a lock whose holder blocks its JS thread, and never takes it over", async () => {
  const dir = await makeTestDir("lock-busy");
  const marker = `${dir}/holding`;
  // With a heartbeat lock, 600 ms without a beat would let the run take the lock.
  const env = { SENT_LOCK_STALE_MS: "600", NO_COLOR: "1" };
  const holder = new Deno.Command(DENO, {
    args: [
      "run",
      ...PIPELINE_FLAGS,
      "tests/pipeline/_lock_holder.ts",
      `${dir}/store/.lock`,
      "2500",
      marker,
    ],
    cwd: ROOT,
    env,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  await waitForFile(marker);
  const holderPid = await Deno.readTextFile(marker);
  const run = await sent(["reproduce", "--store", `${dir}/store`], { env });
  const held = await holder.output();
  assert.equal(held.code, 0, new TextDecoder().decode(held.stderr));
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`waiting for the store lock held by pid ${holderPid} `));
  assert.doesNotMatch(run.stderr, /took over|without releasing/);
  // The run started its first node only after the holder was done.
  const done = new Date(await Deno.readTextFile(`${marker}.done`));
  const lock = JSON.parse(await Deno.readTextFile(`${dir}/sent.lock.json`));
  const { key } = lock.nodes.source;
  const manifest = JSON.parse(
    await Deno.readTextFile(`${dir}/store/source/${key.slice(0, 2)}/${key}/manifest.json`),
  );
  assert.ok(
    new Date(manifest.timings.startedAt) >= done,
    `${manifest.timings.startedAt} < ${done}`,
  );
});
