/** The artifact store: commit by rename, manifests with sha256 per file, verify, and --verify. */

import assert from "node:assert/strict";
import type { NodeInputs } from "../../pipeline/cache_key.ts";
import { sha256 } from "../../pipeline/hash.ts";
import {
  ArtifactStore,
  inspectStore,
  type ManifestDraft,
  openStore,
  STORE_MARKER,
} from "../../pipeline/store.ts";
import { StoreError } from "../../pipeline/errors.ts";
import { makeTestDir } from "../_tmp.ts";
import { latestRecord, nodesIn, readLock, sentOk } from "./_harness.ts";

const KEY = "ab".repeat(32);

function draft(key = KEY): ManifestDraft {
  const inputs: NodeInputs = {
    stage: "demo",
    params: {},
    code: { files: {}, packages: [] },
    config: {},
    upstream: {},
    engine: {
      pipeline: "1",
      ort: "1.30.0",
      device: "cpu",
      dtype: "float32",
      deno: Deno.version.deno,
    },
  };
  const now = new Date().toISOString();
  return {
    stage: "demo",
    node: "demo",
    params: {},
    key,
    inputs,
    metrics: { loss: 0.5 },
    timings: { startedAt: now, finishedAt: now, seconds: 0 },
    versions: { deno: Deno.version.deno },
    run: "test",
  };
}

Deno.test("ArtifactStore.commit() renames the temp dir into <stage>/<key[0:2]>/<key> with a sha256 per file", async () => {
  const store = new ArtifactStore(`${await makeTestDir("store-commit")}/store`);
  const temp = await store.createTemp("demo", KEY);
  await Deno.mkdir(`${temp}/sub`);
  await Deno.writeTextFile(`${temp}/a.txt`, "abc");
  await Deno.writeTextFile(`${temp}/sub/b.json`, "{}");
  const manifest = await store.commit(temp, draft());
  const dir = store.artifactDir("demo", KEY);
  assert.equal(dir, `${store.root}/demo/ab/${KEY}`);
  assert.deepEqual(manifest.files, {
    "a.txt": { sha256: sha256("abc"), bytes: 3 },
    "sub/b.json": { sha256: sha256("{}"), bytes: 2 },
  });
  assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)), manifest);
  await assert.rejects(Deno.stat(temp), Deno.errors.NotFound);
  assert.deepEqual((await store.read("demo", KEY)).manifest, manifest);
  assert.deepEqual(await store.verify("demo", KEY), { ok: true, problems: [] });
});

Deno.test("ArtifactStore.commit() keeps the first artifact when another commit of the same key races it", async () => {
  const store = new ArtifactStore(`${await makeTestDir("store-race")}/store`);
  const first = await store.createTemp("demo", KEY);
  const second = await store.createTemp("demo", KEY);
  await Deno.writeTextFile(`${first}/x`, "1");
  await Deno.writeTextFile(`${second}/x`, "1");
  const a = await store.commit(first, draft());
  const b = await store.commit(second, { ...draft(), run: "other" });
  assert.equal(b.run, a.run);
  await assert.rejects(Deno.stat(second), Deno.errors.NotFound);
});

Deno.test("ArtifactStore.verify() names a flipped byte, a missing file and an extra file", async () => {
  const store = new ArtifactStore(`${await makeTestDir("store-verify")}/store`);
  const temp = await store.createTemp("demo", KEY);
  await Deno.writeTextFile(`${temp}/a.txt`, "hello");
  await Deno.writeTextFile(`${temp}/b.txt`, "world");
  await store.commit(temp, draft());
  const dir = store.artifactDir("demo", KEY);
  await Deno.writeTextFile(`${dir}/a.txt`, "hellp");
  await Deno.remove(`${dir}/b.txt`);
  await Deno.writeTextFile(`${dir}/c.txt`, "?");
  const result = await store.verify("demo", KEY);
  assert.equal(result.ok, false);
  assert.match(
    result.problems[0],
    /^a\.txt: sha256 [0-9a-f]{12}… \(5 bytes\), manifest says [0-9a-f]{12}… \(5 bytes\)$/,
  );
  assert.equal(result.problems[1], "b.txt: missing");
  assert.equal(result.problems[2], "c.txt: not listed in the manifest");
});

Deno.test("ArtifactStore.read() treats a corrupt manifest as a miss with the reason", async () => {
  const store = new ArtifactStore(`${await makeTestDir("store-corrupt")}/store`);
  const temp = await store.createTemp("demo", KEY);
  await store.commit(temp, draft());
  await Deno.writeTextFile(`${store.artifactDir("demo", KEY)}/manifest.json`, "{ not json");
  const { manifest, reason } = await store.read("demo", KEY);
  assert.equal(manifest, null);
  assert.match(reason, /^corrupt manifest .*manifest\.json/);
  assert.equal((await store.read("demo", "cd".repeat(32))).reason, "not in store");
});

Deno.test("reproduce --verify catches a flipped byte in an artifact and recomputes only that node", async () => {
  const dir = await makeTestDir("store-cli-verify");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const victim = "train[method=sent,seed=2]";
  const { key } = (await readLock(dir)).nodes[victim];
  const file = `${dir}/store/train/${key.slice(0, 2)}/${key}/weights.json`;
  const original = await Deno.readFile(file);
  const flipped = original.slice();
  flipped[5] ^= 0x01;
  await Deno.writeFile(file, flipped);

  await sentOk(["reproduce", ...store]);
  assert.equal(
    nodesIn(await latestRecord(dir), ["cached"]).length,
    12,
    "without --verify the cache is trusted",
  );

  const verified = await sentOk(["reproduce", ...store, "--verify"]);
  const record = await latestRecord(dir);
  assert.deepEqual(nodesIn(record), [victim]);
  assert.equal(record.nodes.find((node) => node.node === victim)!.state, "recomputed");
  assert.match(
    verified.stderr,
    /train\[method=sent,seed=2\]\s+\(corrupted: weights\.json: sha256 /,
  );
  assert.deepEqual(await Deno.readFile(file), original);

  await sentOk(["reproduce", ...store, "--verify"]);
  assert.equal(nodesIn(await latestRecord(dir), ["cached"]).length, 12);
});

Deno.test("openStore() marks a new or empty directory, adopts an unmarked one holding only artifacts, and refuses others", async () => {
  const dir = await makeTestDir("store-open");
  const fresh = await openStore(`${dir}/fresh`, "write");
  assert.equal(JSON.parse(await Deno.readTextFile(`${fresh.root}/${STORE_MARKER}`)).format, 1);
  assert.deepEqual(await inspectStore(fresh.root), { kind: "store" });

  // A store from before markers: artifacts only. Reading leaves it as it is; writing marks it.
  const old = new ArtifactStore(`${dir}/old`);
  await old.commit(await old.createTemp("demo", KEY), draft());
  await Deno.remove(`${old.root}/.tmp`, { recursive: true });
  assert.deepEqual(await inspectStore(old.root), { kind: "unmarked" });
  await openStore(old.root, "read");
  assert.deepEqual(await inspectStore(old.root), { kind: "unmarked" });
  await openStore(old.root, "write");
  assert.deepEqual(await inspectStore(old.root), { kind: "store" });

  await Deno.mkdir(`${dir}/other/docs`, { recursive: true });
  await Deno.writeTextFile(`${dir}/other/docs/a.md`, "");
  await Deno.writeTextFile(`${dir}/other/notes.md`, "");
  for (const use of ["read", "write", "collect"] as const) {
    await assert.rejects(
      openStore(`${dir}/other`, use),
      (error: Error) =>
        error instanceof StoreError &&
        /holds other things \(docs\/, notes\.md\)/.test(error.message),
    );
  }
  await assert.rejects(
    openStore(`${dir}/other/notes.md`, "read"),
    /is a file; expected a directory/,
  );
  await assert.rejects(openStore(`${dir}/absent`, "collect"), /does not exist/);
});

Deno.test("reproduce --verify recomputes an artifact whose manifest parses but is malformed", async () => {
  const dir = await makeTestDir("store-malformed");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const lock = await readLock(dir);
  const broken: Record<string, unknown> = {
    "train[method=sent,seed=2]": { files: { "weights.json": { sha256: 5 } } },
    "evaluate[method=grpo,seed=1]": { files: null },
    "tally": { params: "none" },
  };
  for (const [id, patch] of Object.entries(broken)) {
    const { stage, key } = lock.nodes[id];
    const path = `${dir}/store/${stage}/${key.slice(0, 2)}/${key}/manifest.json`;
    const manifest = JSON.parse(await Deno.readTextFile(path));
    await Deno.writeTextFile(path, JSON.stringify({ ...manifest, ...(patch as object) }));
  }
  const verified = await sentOk(["reproduce", ...store, "--verify"]);
  const record = await latestRecord(dir);
  assert.deepEqual(nodesIn(record, ["recomputed"]), Object.keys(broken).sort());
  assert.match(verified.stderr, /tally\s+\(corrupted: manifest .*tally.* params/);
  assert.doesNotMatch(verified.stderr, /TypeError/);
  await sentOk(["reproduce", ...store, "--verify"]);
  assert.equal(nodesIn(await latestRecord(dir), ["cached"]).length, 12);
});
