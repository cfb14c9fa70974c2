/**
 * `deno task publish --out DIR` on the test preset's store: an index and one page per run,
 * byte-identical when published again, a page for a failed run that says what is missing, and
 * the folders it refuses.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { listRunRecords } from "../../pipeline/records.ts";
import { ArtifactStore, listFiles } from "../../pipeline/store.ts";
import { runArtifacts } from "../../reports/run_artifacts.ts";
import { makeTestDir } from "../_tmp.ts";
import { sent } from "../pipeline/_harness.ts";
import { sentOnStore, testPresetRun } from "./_dag.ts";

const CLI = { script: "pipeline/cli.ts" };

async function publish(store: string, out: string) {
  return await sent(["publish", "--store", store, "--out", out], CLI);
}

async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of (await listFiles(dir)).sort()) {
    out[file] = createHash("sha256").update(await Deno.readFile(`${dir}/${file}`)).digest("hex");
  }
  return out;
}

Deno.test("publish writes an index of the store's runs and one report page per run, byte-identical when published again", async () => {
  const { root, store } = await testPresetRun();
  const out = await makeTestDir("site");
  const first = await publish(store, `${out}/site`);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout.trim().split("\n").at(-1), `site: ${out}/site/index.html`);

  const files = await listFiles(`${out}/site`);
  for (
    const file of [
      "index.html",
      "site.json",
      ".nojekyll",
      "vendor/vega.min.js",
      "vendor/vega-lite.min.js",
      "vendor/vega-embed.min.js",
    ]
  ) {
    assert.ok(files.includes(file), file);
  }
  const records = await listRunRecords(root);
  assert.ok(records.length >= 1);
  const index = await Deno.readTextFile(`${out}/site/index.html`);
  for (const record of records) {
    assert.ok(index.includes(`<a href="runs/${record.id}/index.html">${record.id}</a>`), record.id);
    const page = await Deno.readTextFile(`${out}/site/runs/${record.id}/index.html`);
    assert.match(page, /<script src="\.\.\/\.\.\/vendor\/vega\.min\.js"><\/script>/);
    assert.match(page, /<a href="\.\.\/\.\.\/index\.html">all runs<\/a>/);
    assert.ok(page.includes(`<h3>This run</h3>`));
    assert.ok(
      !files.some((f) => f.startsWith(`runs/${record.id}/vendor/`)),
      "pages share the site's vendor/",
    );
  }

  const before = await digests(`${out}/site`);
  const again = await publish(store, `${out}/site`);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(await digests(`${out}/site`), before);
});

Deno.test("publish gives a failed run a page that names the failed node and what is missing", async () => {
  const { root, store } = await testPresetRun();
  const failed = await sentOnStore(root, "reproduce", "--set", "evaluate.ks=[1,2,64]");
  assert.equal(failed.code, 1, failed.stderr);
  const record = (await listRunRecords(root)).find((r) => r.status === "failed")!;
  const out = await makeTestDir("site-failed");
  assert.equal((await publish(store, `${out}/site`)).code, 0);
  const page = await Deno.readTextFile(`${out}/site/runs/${record.id}/index.html`);
  assert.match(page, /<h2>Missing<\/h2>/);
  assert.match(
    page,
    /<li>evaluate\[policy=base,seed=1\] failed: evaluate\.ks has k = 64; expected every k ≤ evaluate\.samples \(4\)<\/li>/,
  );
  assert.match(page, /<li>results: no artifact \(skipped\)<\/li>/);
  assert.match(
    page,
    /<li>evaluate\[policy=sent,seed=1\] skipped \(the run stopped after a failure\)<\/li>/,
  );
  assert.match(page, /No results\.json in this run: no tables\./);
  assert.match(page, /<figure id="fig-entropy">/); // what the run had is still drawn
  const index = await Deno.readTextFile(`${out}/site/index.html`);
  assert.match(index, new RegExp(`<tr class="failed"><td><a href="runs/${record.id}/index.html">`));
  assert.match(index, /partial \(\d+ missing\)/);
});

Deno.test("publish refuses an --out folder that holds other files, and one outside the project, with exit 2", async () => {
  const { store } = await testPresetRun();
  const out = await makeTestDir("site-refused");
  await Deno.writeTextFile(`${out}/notes.txt`, "mine");
  const taken = await publish(store, out);
  assert.equal(taken.code, 2);
  assert.match(
    taken.stderr,
    /^sent publish: --out .+ is a folder that is not a published site \(no site\.json\); expected an empty or new folder/m,
  );
  assert.equal(await Deno.readTextFile(`${out}/notes.txt`), "mine");
  const outside = await publish(store, "/tmp/sent-site-outside");
  assert.equal(outside.code, 2);
  assert.match(
    outside.stderr,
    /^sent publish: --out \/tmp\/sent-site-outside is outside the folders/m,
  );
});

Deno.test("a run page names the artifacts that are gone from the store, and rebuilds the config from the stages' slices without a report node", async () => {
  const { root, store } = await testPresetRun();
  const record = (await listRunRecords(root)).find((r) => r.status === "ok")!;
  const gone = "0".repeat(64);
  const found = await runArtifacts(new ArtifactStore(store), {
    ...record,
    nodes: [
      ...record.nodes.filter((n) => n.stage !== "report"),
      { node: "score", stage: "score", key: gone, state: "cached", reason: "", seconds: 0 },
    ],
  });
  assert.deepEqual(found.gone, ["score: its artifact is no longer in the store (not in store)"]);
  assert.equal(found.configFromSlices, true);
  const config = found.config as { train: { methods: string[] }; runtime: { seeds: number[] } };
  assert.equal(config.train.methods.length, 10);
  assert.deepEqual(config.runtime.seeds, [1]);
});
