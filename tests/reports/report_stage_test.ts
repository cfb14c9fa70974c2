/**
 * The `report` stage through the real DAG on the test preset: what `reproduce` prints, what the
 * report folder holds, byte-identical re-rendering, `deno task report`; and partial reports
 * from the fixture and from damaged copies of real artifacts.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { listFiles } from "../../pipeline/store.ts";
import { buildReport } from "../../reports/build.ts";
import { type ArtifactRef, loadInputs } from "../../reports/inputs.ts";
import { BROWSER_SCRIPTS, VENDOR_FILES } from "../../reports/vendor.ts";
import { writeReport } from "../../reports/write.ts";
import { makeTestDir } from "../_tmp.ts";
import { fixtureInputs } from "./_fixtures.ts";
import { sentOnStore, testPresetRun } from "./_dag.ts";

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function digests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const file of (await listFiles(dir)).sort()) {
    if (file !== "manifest.json") out[file] = sha256(await Deno.readFile(`${dir}/${file}`));
  }
  return out;
}

Deno.test("reproduce --preset test ends with report: PATH to a folder with the page, figures, tables, CSV and the run's results.json", async () => {
  const { root, reportDir, resultsFile, output } = await testPresetRun();
  const lines = output.stdout.trim().split("\n");
  assert.match(lines.at(-2)!, /^results: .+\/results\.json$/);
  assert.equal(lines.at(-1), `report: ${reportDir}/index.html`);
  assert.doesNotMatch(output.stdout, /not implemented yet/);

  const files = await listFiles(reportDir);
  for (
    const file of [
      "index.html",
      "results.json",
      "provenance.json",
      "tables/tables.md",
      "tables/tables.html",
      "tables/results.csv",
      "tables/summary.csv",
      "tables/paired.csv",
    ]
  ) {
    assert.ok(files.includes(file), `${file} in ${files.join(", ")}`);
  }
  assert.equal(files.filter((f) => f.startsWith("figures/")).length, 12 * 3);
  assert.deepEqual(
    await Deno.readFile(`${reportDir}/results.json`),
    await Deno.readFile(resultsFile),
  );
  for (const script of BROWSER_SCRIPTS) {
    assert.equal(sha256(await Deno.readFile(`${reportDir}/vendor/${script.as}`)), script.sha256);
  }

  // the page loads only its own files
  const page = await Deno.readTextFile(`${reportDir}/index.html`);
  assert.doesNotMatch(page, /(src|href)="(https?:)?\/\//);
  assert.deepEqual(
    [...page.matchAll(/<script src="([^"]+)"/g)].map((m) => m[1]),
    BROWSER_SCRIPTS.map((s) => `vendor/${s.as}`),
  );
  assert.doesNotMatch(page, /id="missing"/);
  assert.match(page, /<table class="paper" id="table-avg_at_k">/);
  assert.match(page, /<table class="paired" id="table-paired">/);

  // tables: every (set, policy, seed) × (Pass@k and Avg@k per k, greedy) in results.csv
  const csv = (await Deno.readTextFile(`${reportDir}/tables/results.csv`)).trim().split("\n");
  assert.equal(csv[0], "set,policy,seed,metric,k,value");
  assert.equal(csv.length - 1, 2 * 12 * 1 * (2 * 3 + 1));
  const md = await Deno.readTextFile(`${reportDir}/tables/tables.md`);
  for (const title of ["Pass@k (%)", "Avg@k (%)", "Greedy accuracy (%)", "Paired comparisons"]) {
    assert.ok(md.includes(`**${title}**`), title);
  }

  // provenance: the keys are the lock file's, every upstream node is there with its duration
  const provenance = JSON.parse(await Deno.readTextFile(`${reportDir}/provenance.json`));
  const lock = JSON.parse(await Deno.readTextFile(`${root}/sent.lock.json`));
  assert.equal(provenance.nodes.length, Object.keys(lock.nodes).length - 1);
  for (const node of provenance.nodes) assert.equal(node.key, lock.nodes[node.node].key, node.node);
  assert.deepEqual(
    provenance.stages.map((s: { stage: string; nodes: number }) => `${s.stage} ${s.nodes}`),
    ["dataset 1", "base 1", "score 1", "curriculum 1", "train 10", "evaluate 12", "results 1"],
  );
  assert.ok(provenance.seeds.includes("runtime.seeds = [1]"));
  assert.ok(provenance.engines[0].value.startsWith("cpu · float32 · ORT "));
  assert.ok(provenance.machine.cores > 0);
  assert.equal(provenance.tools["vega-lite"], VENDOR_FILES.vegaLite.version);
  assert.ok(provenance.inferred.some((c: { choice: string }) => c.choice.startsWith("w/ High_En")));
});

Deno.test("stage report --force renders the same bytes again", async () => {
  const { root, reportDir } = await testPresetRun();
  const before = await digests(reportDir);
  const forced = await sentOnStore(root, "stage", "report", "--force");
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /report: .+\/index\.html/);
  assert.deepEqual(await digests(reportDir), before);
});

Deno.test("deno task report runs the cached report stage and prints report: PATH", async () => {
  const { root, reportDir } = await testPresetRun();
  const report = await sentOnStore(root, "report");
  assert.equal(report.code, 0, report.stderr);
  assert.match(report.stdout, /^\d+ nodes: \d+ cached · /m);
  assert.equal(report.stdout.trim().split("\n").at(-1), `report: ${reportDir}/index.html`);
});

Deno.test("a partial report renders and says what is missing: a method's seed, an eval set, a stage", async () => {
  const inputs = fixtureInputs({
    drop: ["sent/2/set-a", "sent/2/set-b", "grpo/1/set-b", "grpo/2/set-b"],
    dropTrain: ["sent/2"],
    without: ["curriculum"],
  });
  const report = buildReport(inputs);
  assert.deepEqual(report.missing, [
    "dataset: no artifact",
    "base: no artifact",
    "score: no artifact",
    "curriculum: no artifact",
    "train: no artifact",
    "evaluate: no artifact",
    "results: no artifact",
    "results: GRPO has no seed 1 on set-b",
    "results: GRPO has no seed 2 on set-b",
    "results: SENT has no seed 2 on set-a, set-b",
  ]);
  const dir = await makeTestDir("report-partial");
  await writeReport(report, dir);
  const page = await Deno.readTextFile(`${dir}/index.html`);
  assert.match(page, /<section id="missing" class="warn"><h2>Missing<\/h2>/);
  assert.match(page, /<li>results: SENT has no seed 2 on set-a, set-b<\/li>/);
  const md = await Deno.readTextFile(`${dir}/tables/tables.md`);
  assert.match(md, /^\| set-b \| 1 \| [^|]+ \| — \| /m); // GRPO's empty cells
  // the SE histogram is drawn without cut lines; nothing is skipped
  assert.deepEqual(report.skipped, []);
});

Deno.test("loadInputs() records an unreadable artifact file and the report lists it under missing", async () => {
  const { store } = await testPresetRun();
  const manifestOf = async (stage: string) => {
    for await (const prefix of Deno.readDir(`${store}/${stage}`)) {
      for await (const key of Deno.readDir(`${store}/${stage}/${prefix.name}`)) {
        const dir = `${store}/${stage}/${prefix.name}/${key.name}`;
        return { dir, manifest: JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) };
      }
    }
    throw new Error(`no ${stage} artifact`);
  };
  const score = await manifestOf("score");
  const copy = await makeTestDir("report-damaged");
  for (const file of await listFiles(score.dir)) {
    await Deno.copyFile(`${score.dir}/${file}`, `${copy}/${file}`);
  }
  await Deno.writeTextFile(`${copy}/token_entropy.json`, "{ not json");
  const ref: ArtifactRef = {
    node: "score",
    stage: "score",
    params: {},
    key: score.manifest.key,
    dir: copy,
    manifest: score.manifest,
  };
  const inputs = await loadInputs([ref], { train: { methods: [] } });
  assert.equal(inputs.score, null);
  assert.equal(inputs.problems.length, 1);
  assert.match(inputs.problems[0], /^score: token_entropy\.json is not JSON: /);
  assert.ok(
    buildReport(inputs).missing.some((line) =>
      line.startsWith("unreadable: score: token_entropy.json")
    ),
  );
});

Deno.test("report.formats without html shows the SVG files and ships no script; without svg and png only specs are written", async () => {
  const svgOnly = buildReport(fixtureInputs({ config: { report: { formats: ["svg"] } } }));
  const a = await makeTestDir("report-svg-only");
  const written = await writeReport(svgOnly, a);
  assert.ok(!written.files.some((f) => f.startsWith("vendor/") || f.endsWith(".png")));
  const page = await Deno.readTextFile(`${a}/index.html`);
  assert.doesNotMatch(page, /<script/);
  assert.match(page, /<body data-figures="done">/);
  assert.match(page, /<img src="figures\/entropy\.svg" alt="Policy entropy per step">/);

  const htmlOnly = buildReport(fixtureInputs({ config: { report: { formats: ["html"] } } }));
  const b = await makeTestDir("report-html-only");
  const files = (await writeReport(htmlOnly, b)).files.filter((f) => f.startsWith("figures/"));
  assert.ok(files.length > 0 && files.every((f) => f.endsWith(".vl.json")));
  assert.match(
    await Deno.readTextFile(`${b}/index.html`),
    /<div class="view" data-figure="entropy"><\/div>/,
  );
});
