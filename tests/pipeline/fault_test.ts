/**
 * Fault injection: `reproduce` of the fixture pipeline is SIGKILLed at seeded random points
 * (counted in the progress lines it prints, so they fall into every stage, into commits and
 * between nodes). After each kill the store and the state files must be whole; the next run must
 * complete with the same artifacts as an uninterrupted run, and `--verify` must find nothing to
 * recompute.
 */

import assert from "node:assert/strict";
import { listRunRecords, readLockFile } from "../../pipeline/records.ts";
import { Rng } from "../../pipeline/rng.ts";
import { ArtifactStore } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import { FIXTURE_NODES, latestRecord, nodesIn, readLock, sentOk, spawnSent } from "./_harness.ts";

/** Runs killed (each in a fresh store), and the seed of the points where they are killed. */
const KILLS = 8;
const SEED = "fault-injection";
/** Train nodes of 30 steps, two nodes at once. */
const ARGS = ["--set", "fixture.steps=30", "--jobs", "2"];
/** In the killed runs, each train step (a checkpoint) takes 3 ms more, so kills land inside it. */
const SLOW = { SENT_FIXTURE_STEP_MS: "3" };

/** Node id → its artifact's files (path → sha256 and size), read from the lock file's keys. */
async function artifactFiles(dir: string): Promise<Record<string, unknown>> {
  const lock = await readLock(dir);
  const out: Record<string, unknown> = {};
  for (const id of FIXTURE_NODES) {
    const { stage, key } = lock.nodes[id];
    const path = `${dir}/store/${stage}/${key.slice(0, 2)}/${key}/manifest.json`;
    out[id] = JSON.parse(await Deno.readTextFile(path)).files;
  }
  return out;
}

/** Every committed artifact re-hashes to its manifest, and every state file reads back. */
async function assertWhole(dir: string, when: string): Promise<number> {
  const store = new ArtifactStore(`${dir}/store`);
  const { artifacts, strays } = await store.scan();
  assert.deepEqual(strays, [], `${when}: strays in the store`);
  for (const artifact of artifacts) {
    const check = await store.verify(artifact.stage, artifact.key);
    assert.ok(check.ok, `${when}: ${artifact.stage}/${artifact.key}: ${check.problems.join("; ")}`);
  }
  await readLockFile(`${dir}/sent.lock.json`); // throws when damaged
  await listRunRecords(dir); // throws when a record is damaged
  return artifacts.length;
}

/** Count a child's stderr lines until `target`, then return; the rest drains in the background. */
async function waitForLines(stream: ReadableStream<Uint8Array>, target: number): Promise<void> {
  const reader = stream.getReader();
  let lines = 0;
  while (lines < target) {
    const { value, done } = await reader.read();
    if (done) return;
    for (const byte of value) if (byte === 10) lines++;
  }
  (async () => {
    while (!(await reader.read()).done) {
      // Drain, so the child never blocks on a full pipe.
    }
  })().catch(() => {});
}

Deno.test("reproduce killed with SIGKILL at seeded random points: the next run completes with the same artifacts as an uninterrupted run, and --verify finds nothing", async () => {
  const clean = await makeTestDir("fault-clean");
  const reference = await sentOk(["reproduce", "--store", `${clean}/store`, ...ARGS], {
    env: SLOW,
  });
  // Kill points are counted in lines of progress a run prints (node starts, ends, steps), so
  // they fall across every stage rather than mostly into start-up.
  const cleanLines = reference.stderr.split("\n").length;
  const cleanFiles = await artifactFiles(clean);

  const rng = Rng.fromSeed(SEED);
  const seen: string[] = [];
  for (let i = 0; i < KILLS; i++) {
    const dir = await makeTestDir(`fault-${i}`);
    const child = spawnSent(["reproduce", "--store", `${dir}/store`, ...ARGS], { env: SLOW });
    const line = 1 + Math.floor(rng.float() * cleanLines);
    const afterMs = rng.float() * 10; // then a little later, to land inside a step or a write
    await waitForLines(child.stderr, line);
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    try {
      child.kill("SIGKILL");
    } catch {
      // Finished before the kill.
    }
    const status = await child.status;
    await child.stdout.cancel();
    const when = `kill ${i + 1} after line ${line} + ${afterMs.toFixed(0)} ms (${
      status.signal ?? `exit ${status.code}`
    })`;
    seen.push(`${when}: ${await assertWhole(dir, when)} artifacts`);

    const next = await sentOk(["reproduce", "--store", `${dir}/store`, ...ARGS]);
    assert.match(next.stdout, /12 nodes: /, when);
    assert.equal((await latestRecord(dir)).status, "ok", when);
    assert.deepEqual(await artifactFiles(dir), cleanFiles, when);
    assert.deepEqual([...Deno.readDirSync(`${dir}/store/.tmp`)], [], `${when}: leftovers`);
    await sentOk(["reproduce", "--store", `${dir}/store`, ...ARGS, "--verify"]);
    assert.deepEqual(nodesIn(await latestRecord(dir), ["cached"]), FIXTURE_NODES, when);
  }
  console.log(seen.join("\n"));
  assert.ok(seen.some((line) => line.includes("SIGKILL")), "at least one run was killed");
});
