import assert from "node:assert/strict";
import { BENCHMARKS, needsBenchmarks } from "../_benchmarks.ts";
import { makeTestDir } from "../_tmp.ts";

/** `sent stage dataset`: only the dataset stage (the later stages are not run here). */
async function stageDataset(
  store: string,
  ...extra: string[]
): Promise<{ code: number; out: string }> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=pipeline", "pipeline/cli.ts", "stage", "dataset", "--store", store, ...extra],
    stdout: "piped",
    stderr: "piped",
  });
  const { code, stdout, stderr } = await cmd.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

async function readJsonl(path: string): Promise<Record<string, unknown>[]> {
  const text = await Deno.readTextFile(path);
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

async function artifactDir(store: string): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(`${store}/../sent.lock.json`));
  const key: string = lock.nodes.dataset.key;
  return `${store}/dataset/${key.slice(0, 2)}/${key}`;
}

Deno.test("dataset stage writes disjoint built-in train and eval sets through the CLI", async () => {
  const root = await makeTestDir("dataset-stage");
  const store = `${root}/store`;
  const run = await stageDataset(
    store,
    "--set",
    "data.trainProblems=200",
    "--set",
    "data.evalProblems=30",
  );
  assert.equal(run.code, 0, run.out);
  const dir = await artifactDir(store);
  const train = await readJsonl(`${dir}/train.jsonl`);
  const aime24 = await readJsonl(`${dir}/eval/tiny-aime24.jsonl`);
  const aime25 = await readJsonl(`${dir}/eval/tiny-aime25.jsonl`);
  assert.equal(train.length, 200);
  assert.equal(aime24.length, 30);
  assert.equal(aime25.length, 30);
  const trainProblems = new Set(train.map((r) => r.problem));
  for (const row of [...aime24, ...aime25]) assert.ok(!trainProblems.has(row.problem));
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
  assert.equal(summary.train.rows, 200);
  assert.deepEqual(Object.keys(summary.eval), ["tiny-aime24", "tiny-aime25"]);

  // Same seed, fresh store: byte-identical artifact.
  const again = await stageDataset(
    `${root}/store2`,
    "--set",
    "data.trainProblems=200",
    "--set",
    "data.evalProblems=30",
  );
  assert.equal(again.code, 0, again.out);
  const dir2 = await artifactDir(`${root}/store2`);
  assert.equal(
    await Deno.readTextFile(`${dir2}/train.jsonl`),
    await Deno.readTextFile(`${dir}/train.jsonl`),
  );
});

Deno.test("dataset stage names the missing file of a registered benchmark", async () => {
  const root = await makeTestDir("dataset-stage-missing");
  const run = await stageDataset(
    `${root}/store`,
    "--set",
    "data.evalSets=[aime24]",
    "--set",
    `data.dir=${root}/no-such-dir`,
  );
  assert.equal(run.code, 1, run.out);
  assert.match(run.out, /fetch-data aime24/);
});

Deno.test(needsBenchmarks("dataset stage reads a registered benchmark from data.dir"), async () => {
  const root = await makeTestDir("dataset-stage-shared");
  const run = await stageDataset(
    `${root}/store`,
    "--set",
    "data.evalSets=[aime24,amc23]",
    "--set",
    `data.dir=${BENCHMARKS}`,
    "--set",
    "data.trainProblems=50",
  );
  assert.equal(run.code, 0, run.out);
  const dir = await artifactDir(`${root}/store`);
  assert.equal((await readJsonl(`${dir}/eval/aime24.jsonl`)).length, 30);
  assert.equal((await readJsonl(`${dir}/eval/amc23.jsonl`)).length, 40);
});
