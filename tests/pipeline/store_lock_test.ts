/** The store lock: O_EXCL lock file, waiting with the holder named, stale-lock takeover. */

import assert from "node:assert/strict";
import { acquireStoreLock, describeHolder, type LockHolder } from "../../pipeline/store_lock.ts";
import { makeTestDir } from "../_tmp.ts";

Deno.test("acquireStoreLock() writes the holder into an exclusive lock file and release() removes it", async () => {
  const path = `${await makeTestDir("lock-basic")}/store/.lock`;
  const lock = await acquireStoreLock(path, { command: "reproduce" });
  const holder: LockHolder = JSON.parse(await Deno.readTextFile(path));
  assert.equal(holder.pid, Deno.pid);
  assert.equal(holder.command, "reproduce");
  await lock.release();
  await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
});

Deno.test("acquireStoreLock() waits while a live holder has the lock, saying who holds it", async () => {
  const path = `${await makeTestDir("lock-wait")}/.lock`;
  const first = await acquireStoreLock(path, { command: "first", staleAfterMs: 60_000 });
  const waits: (LockHolder | null)[] = [];
  let acquired = false;
  const second = acquireStoreLock(path, {
    command: "second",
    pollMs: 20,
    onWait: (holder) => waits.push(holder),
  }).then((lock) => {
    acquired = true;
    return lock;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(acquired, false);
  assert.equal(waits.length, 1);
  assert.equal(waits[0]?.command, "first");
  assert.match(describeHolder(waits[0]), /^pid \d+ on host .* \("first", since /);
  await first.release();
  const lock = await second;
  assert.equal(JSON.parse(await Deno.readTextFile(path)).command, "second");
  await lock.release();
});

Deno.test("acquireStoreLock() takes over a lock whose heartbeat stopped", async () => {
  const path = `${await makeTestDir("lock-stale")}/.lock`;
  const dead: LockHolder = {
    pid: 999999,
    hostname: "elsewhere",
    command: "reproduce",
    startedAt: "2020-01-01T00:00:00Z",
  };
  await Deno.writeTextFile(path, JSON.stringify(dead));
  const old = new Date(Date.now() - 10_000);
  await Deno.utime(path, old, old);
  const stale: string[] = [];
  const lock = await acquireStoreLock(path, {
    command: "new",
    staleAfterMs: 1_000,
    onStale: (holder, reason) => stale.push(`${holder?.pid} ${reason}`),
  });
  assert.equal(stale.length, 1);
  assert.match(stale[0], /^999999 no heartbeat for \d+\.\d s \(stale after 1 s\) \[heartbeat\]$/);
  assert.equal(JSON.parse(await Deno.readTextFile(path)).pid, Deno.pid);
  await lock.release();
});

Deno.test("acquireStoreLock() keeps a held lock fresh with heartbeats, so waiters do not break it", async () => {
  const path = `${await makeTestDir("lock-heartbeat")}/.lock`;
  const holder = await acquireStoreLock(path, { command: "long", staleAfterMs: 600 });
  let stolen = false;
  const waiter = acquireStoreLock(path, { command: "waiter", staleAfterMs: 600, pollMs: 20 }).then(
    (lock) => {
      stolen = true;
      return lock;
    },
  );
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // 2.5 stale periods
  assert.equal(stolen, false);
  await holder.release();
  await (await waiter).release();
});
