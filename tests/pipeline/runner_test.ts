/**
 * A run killed with SIGKILL in the middle of a stage: the store stays consistent, and the next
 * run takes the lock at once (the kernel dropped it with the process), resumes from the stage's
 * scratch checkpoint and produces the same artifacts as an uninterrupted run.
 */

import assert from "node:assert/strict";
import { ArtifactStore, type Manifest } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import {
  allRecords,
  FIXTURE_NODES,
  latestRecord,
  nodesIn,
  readLock,
  sentOk,
  spawnSent,
  waitForFile,
} from "./_harness.ts";

async function assertStoreConsistent(storeDir: string): Promise<number> {
  const store = new ArtifactStore(storeDir);
  const artifacts = await store.list();
  for (const artifact of artifacts) {
    const check = await store.verify(artifact.stage, artifact.key);
    assert.ok(check.ok, `${artifact.stage}/${artifact.key}: ${check.problems.join("; ")}`);
  }
  return artifacts.length;
}

Deno.test("runGraph() after a SIGKILL mid-stage: consistent store, next run resumes and matches an uninterrupted run", async () => {
  const dir = await makeTestDir("runner-kill");
  const pause = `${dir}/pause`;
  await Deno.writeTextFile(pause, "");
  const child = spawnSent(["reproduce", "--store", `${dir}/store`], {
    env: { SENT_FIXTURE_PAUSE: pause },
  });
  await waitForFile(`${pause}.reached`);
  const victim = (await Deno.readTextFile(`${pause}.reached`)).trim();
  assert.equal(victim, "train[method=grpo,seed=1]");
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  await child.stdout.cancel();
  await child.stderr.cancel();

  // Killed mid-stage: only whole artifacts in the store, the half-written one in .tmp/.
  assert.equal(await assertStoreConsistent(`${dir}/store`), 3); // source, scale, tally
  const leftovers = [...Deno.readDirSync(`${dir}/store/.tmp`)].map((entry) => entry.name);
  assert.equal(leftovers.length, 1);
  assert.ok(Deno.statSync(`${dir}/store/.tmp/${leftovers[0]}/partial.json`).isFile);
  const holder = JSON.parse(await Deno.readTextFile(`${dir}/store/.lock`));
  assert.equal(holder.pid, child.pid, "the killed run's name is left in the lock file");
  assert.equal((await latestRecord(dir)).status, "running");

  const t0 = performance.now();
  const next = await sentOk(["reproduce", "--store", `${dir}/store`]);
  assert.ok(performance.now() - t0 < 10_000, "no wait for a dead run's lock");
  assert.doesNotMatch(next.stderr, /waiting for the store lock/);
  assert.match(
    next.stderr,
    new RegExp(`store lock was last taken by pid ${child.pid} .* ended without releasing it`),
  );
  assert.match(next.stderr, /removed 1 unfinished artifact/);
  assert.match(next.stderr, /\[train\[method=grpo,seed=1\]\] resuming from step 3/);
  assert.deepEqual(nodesIn(await latestRecord(dir), ["cached"]), ["scale", "source", "tally"]);
  assert.equal(await assertStoreConsistent(`${dir}/store`), 12);
  assert.deepEqual([...Deno.readDirSync(`${dir}/store/.tmp`)], []);

  const lock = await readLock(dir);
  const key = lock.nodes[victim].key;
  const manifest: Manifest = JSON.parse(
    await Deno.readTextFile(`${dir}/store/train/${key.slice(0, 2)}/${key}/manifest.json`),
  );
  assert.equal(manifest.metrics.resumedFrom, 3);

  const clean = await makeTestDir("runner-clean");
  await sentOk(["reproduce", "--store", `${clean}/store`]);
  const cleanLock = await readLock(clean);
  for (const id of FIXTURE_NODES) {
    const entry = cleanLock.nodes[id];
    assert.equal(lock.nodes[id].key, entry.key);
    const read = async (root: string) =>
      JSON.parse(
        await Deno.readTextFile(
          `${root}/store/${entry.stage}/${entry.key.slice(0, 2)}/${entry.key}/manifest.json`,
        ),
      ).files;
    assert.deepEqual(await read(dir), await read(clean), `artifact files of ${id}`);
  }
});

Deno.test("reproduce: a second process waits for the store lock, then finds everything cached", async () => {
  const dir = await makeTestDir("runner-wait");
  const pause = `${dir}/pause`;
  await Deno.writeTextFile(pause, "");
  const first = spawnSent(["reproduce", "--store", `${dir}/store`], {
    env: { SENT_FIXTURE_PAUSE: pause },
  });
  await waitForFile(`${pause}.reached`);
  const second = spawnSent(["reproduce", "--store", `${dir}/store`]);
  const waited = await readUntil(second.stderr, /waiting for the store lock held by pid (\d+)/);
  assert.equal(waited.match?.[1], String(first.pid));
  await Deno.remove(pause);

  const [a, b] = await Promise.all([first.output(), second.status]);
  assert.equal(a.code, 0, new TextDecoder().decode(a.stderr));
  assert.equal(b.code, 0, waited.text + (await waited.rest));
  const [recordA, recordB] = await allRecords(dir);
  assert.deepEqual(nodesIn(recordA), FIXTURE_NODES);
  assert.deepEqual(nodesIn(recordB, ["cached"]), FIXTURE_NODES);
  assert.equal(await assertStoreConsistent(`${dir}/store`), 12);
});

Deno.test("reproduce: two processes started together both succeed and each node runs exactly once", async () => {
  const dir = await makeTestDir("runner-together");
  const args = ["reproduce", "--store", `${dir}/store`, "--jobs", "2"];
  const [a, b] = await Promise.all([spawnSent(args).output(), spawnSent(args).output()]);
  const decoder = new TextDecoder();
  assert.equal(a.code, 0, decoder.decode(a.stderr));
  assert.equal(b.code, 0, decoder.decode(b.stderr));
  const records = await allRecords(dir);
  assert.equal(records.length, 2);
  const ran = records.flatMap((record) => nodesIn(record)).sort();
  assert.deepEqual(ran, FIXTURE_NODES, "each node ran once across both processes");
  assert.ok(records.every((record) => record.status === "ok"));
  assert.equal(await assertStoreConsistent(`${dir}/store`), 12);
});

/** Read a stream until a pattern appears; the rest keeps draining in the background. */
async function readUntil(
  stream: ReadableStream<Uint8Array>,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<{ match: RegExpMatchArray | null; text: string; rest: Promise<string> }> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    const match = text.match(pattern);
    if (match) {
      const rest = (async () => {
        let tail = "";
        while (true) {
          const chunk = await reader.read();
          if (chunk.done) return tail;
          tail += decoder.decode(chunk.value, { stream: true });
        }
      })();
      return { match, text, rest };
    }
  }
  throw new Error(`pattern ${pattern} did not appear in:\n${text}`);
}

Deno.test("reproduce interrupted by SIGTERM releases the store lock, and the next run resumes", async () => {
  const dir = await makeTestDir("runner-term");
  const pause = `${dir}/pause`;
  await Deno.writeTextFile(pause, "");
  const child = spawnSent(["reproduce", "--store", `${dir}/store`], {
    env: { SENT_FIXTURE_PAUSE: pause },
  });
  await waitForFile(`${pause}.reached`);
  child.kill("SIGTERM");
  const out = await child.output();
  assert.equal(out.code, 143);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /interrupted \(SIGTERM\); store lock released/,
  );
  assert.equal(await Deno.readTextFile(`${dir}/store/.lock`), "", "released: no holder named");
  const next = await sentOk(["reproduce", "--store", `${dir}/store`]);
  assert.doesNotMatch(next.stderr, /without releasing/);
  assert.match(next.stderr, /resuming from step 3/);
});
