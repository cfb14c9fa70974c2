/**
 * The CLI end to end, as real processes on the fixture pipeline: the invalidation rules of the
 * cache keys, status explanations, dry runs, --force, --jobs and failures.
 */

import assert from "node:assert/strict";
import { makeTestDir } from "../_tmp.ts";
import {
  copyFixture,
  FIXTURE_NODES,
  latestRecord,
  nodesIn,
  readLock,
  sent,
  sentOk,
} from "./_harness.ts";

const TRAIN_AND_BELOW = [
  "evaluate[method=grpo,seed=1]",
  "evaluate[method=grpo,seed=2]",
  "evaluate[method=sent,seed=1]",
  "evaluate[method=sent,seed=2]",
  "summary",
  "train[method=grpo,seed=1]",
  "train[method=grpo,seed=2]",
  "train[method=sent,seed=1]",
  "train[method=sent,seed=2]",
];

Deno.test("reproduce runs every node once, then takes all of them from the cache", async () => {
  const dir = await makeTestDir("cli-cache");
  const first = await sentOk(["reproduce", "--store", `${dir}/store`]);
  assert.match(first.stdout, /12 nodes: 12 ran/);
  assert.deepEqual(nodesIn(await latestRecord(dir)), FIXTURE_NODES);
  await sentOk(["reproduce", "--store", `${dir}/store`]);
  const second = await latestRecord(dir);
  assert.deepEqual(nodesIn(second, ["cached"]), FIXTURE_NODES);
  assert.equal(second.status, "ok");
  const lock = await readLock(dir);
  assert.deepEqual(Object.keys(lock.nodes).sort(), FIXTURE_NODES);
});

Deno.test("reproduce reruns exactly the stages that read a changed config key, and their descendants", async () => {
  const dir = await makeTestDir("cli-param");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);

  await sentOk(["reproduce", ...store, "--set", "fixture.scale=3"]);
  assert.deepEqual(nodesIn(await latestRecord(dir)), ["scale", ...TRAIN_AND_BELOW].sort());

  // train.lr is read by train only: scale stays cached (at scale=3), train and below rerun.
  await sentOk(["reproduce", ...store, "--set", "fixture.scale=3", "--set", "train.lr=0.5"]);
  const record = await latestRecord(dir);
  assert.deepEqual(nodesIn(record), TRAIN_AND_BELOW);
  assert.deepEqual(nodesIn(record, ["cached"]), ["scale", "source", "tally"]);

  // evaluate.samples is read by evaluate only.
  await sentOk([
    "reproduce",
    ...store,
    "--set",
    "fixture.scale=3",
    "--set",
    "train.lr=0.5",
    "--set",
    "evaluate.samples=4",
  ]);
  assert.deepEqual(
    nodesIn(await latestRecord(dir)),
    TRAIN_AND_BELOW.filter((id) => !id.startsWith("train")),
  );

  // A key no stage reads changes nothing.
  await sentOk([
    "reproduce",
    ...store,
    "--set",
    "fixture.scale=3",
    "--set",
    "train.lr=0.5",
    "--set",
    "evaluate.samples=4",
    "--set",
    "report.title=x",
  ]);
  assert.deepEqual(nodesIn(await latestRecord(dir)), []);
});

Deno.test("reproduce reruns a stage whose source file was edited, and its descendants only", async () => {
  const dir = await makeTestDir("cli-code");
  const stages = await copyFixture(dir);
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store], { stages });

  await Deno.writeTextFile(`${dir}/scale.ts`, "\n// edited\n", { append: true });
  await sentOk(["reproduce", ...store], { stages });
  assert.deepEqual(nodesIn(await latestRecord(dir)), ["scale", ...TRAIN_AND_BELOW].sort());

  // A helper imported by train and evaluate: both rerun (and summary), scale does not.
  await Deno.writeTextFile(`${dir}/_shared.ts`, "\n// edited\n", { append: true });
  await sentOk(["reproduce", ...store], { stages });
  assert.deepEqual(nodesIn(await latestRecord(dir)), TRAIN_AND_BELOW);

  const status = await sentOk(["status", ...store], { stages });
  assert.match(status.stdout, /cached\s+scale/);
});

Deno.test("reproduce with an added seed runs only the new seed's nodes and the fan-in that reads all seeds", async () => {
  const dir = await makeTestDir("cli-seed");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  await sentOk(["reproduce", ...store, "--set", "runtime.seeds=1,2,3"]);
  assert.deepEqual(nodesIn(await latestRecord(dir)), [
    "evaluate[method=grpo,seed=3]",
    "evaluate[method=sent,seed=3]",
    "summary",
    "train[method=grpo,seed=3]",
    "train[method=sent,seed=3]",
  ]);
});

Deno.test("status explains staleness by config key, source file, upstream node and new node", async () => {
  const dir = await makeTestDir("cli-status");
  const stages = await copyFixture(dir);
  const store = ["--store", `${dir}/store`];
  const before = await sentOk(["status", ...store], { stages });
  assert.match(before.stdout, /no sent\.lock\.json/);
  await sentOk(["reproduce", ...store], { stages });
  await Deno.writeTextFile(`${dir}/tally.ts`, "\n// edited\n", { append: true });

  const { stdout } = await sentOk([
    "status",
    ...store,
    "--set",
    "fixture.scale=3",
    "--set",
    "runtime.seeds=1,2,5",
  ], { stages });
  const line = (id: string) => stdout.split("\n").find((l) => l.split(/\s+/)[1] === id) ?? "";
  assert.match(line("source"), /^cached/);
  assert.match(line("scale"), /^stale .*config fixture\.scale: 2 → 3/);
  assert.match(
    line("tally"),
    /^stale .*source file \.sent\/tmp\/cli-status-[^/]+\/tally\.ts changed/,
  );
  assert.match(line("train[method=sent,seed=2]"), /^stale .*upstream scale changed/);
  assert.match(line("train[method=sent,seed=5]"), /^new .*never run/);
  assert.match(
    line("summary"),
    /upstream nodes changed: .*upstream added: evaluate\[method=grpo,seed=5\]/,
  );
  assert.match(stdout, /16 nodes: 1 cached, 11 stale, 4 new/);
});

Deno.test("reproduce --dry-run lists what would run and why, and changes nothing", async () => {
  const dir = await makeTestDir("cli-dry");
  const store = ["--store", `${dir}/store`];
  await sentOk(["reproduce", ...store]);
  const lockBefore = await Deno.readTextFile(`${dir}/sent.lock.json`);
  const dry = await sentOk(["reproduce", ...store, "--dry-run", "--set", "fixture.scale=5"]);
  assert.match(dry.stderr, /planned\s+scale\s+config fixture\.scale: 2 → 5/);
  assert.match(dry.stderr, /cached\s+tally/);
  assert.match(dry.stdout, /12 nodes: 2 cached, 10 planned/);
  assert.equal(await Deno.readTextFile(`${dir}/sent.lock.json`), lockBefore);
  const status = await sentOk(["status", ...store, "--set", "fixture.scale=5"]);
  assert.match(status.stdout, /stale\s+scale/);
});

Deno.test("stage NAME runs that stage and its ancestors; --force recomputes only that stage", async () => {
  const dir = await makeTestDir("cli-stage");
  const store = ["--store", `${dir}/store`];
  await sentOk(["stage", "train", ...store]);
  const first = await latestRecord(dir);
  assert.deepEqual(
    nodesIn(first),
    ["scale", "source", ...TRAIN_AND_BELOW.filter((id) => id.startsWith("train"))].sort(),
  );

  await sentOk(["stage", "train", "--force", ...store]);
  const forced = await latestRecord(dir);
  assert.deepEqual(nodesIn(forced), TRAIN_AND_BELOW.filter((id) => id.startsWith("train")));
  assert.deepEqual(nodesIn(forced, ["cached"]), ["scale", "source"]);
  assert.ok(
    forced.nodes.every((node) => node.state === "cached" || node.reason === "forced (--force)"),
  );
});

Deno.test("reproduce --jobs 4 gives the same keys and byte-identical artifacts as --jobs 1", async () => {
  const a = await makeTestDir("cli-jobs-a");
  const b = await makeTestDir("cli-jobs-b");
  await sentOk(["reproduce", "--store", `${a}/store`]);
  await sentOk(["reproduce", "--store", `${b}/store`, "--jobs", "4"]);
  const lockA = await readLock(a);
  const lockB = await readLock(b);
  for (const id of FIXTURE_NODES) {
    const entry = lockA.nodes[id];
    assert.equal(lockB.nodes[id].key, entry.key, id);
    const key = entry.key;
    const manifestA = JSON.parse(
      await Deno.readTextFile(`${a}/store/${entry.stage}/${key.slice(0, 2)}/${key}/manifest.json`),
    );
    const manifestB = JSON.parse(
      await Deno.readTextFile(`${b}/store/${entry.stage}/${key.slice(0, 2)}/${key}/manifest.json`),
    );
    assert.deepEqual(manifestB.files, manifestA.files, `files of ${id}`);
  }
});

Deno.test("reproduce exits 1 when a stage fails, skips its descendants, and the next run completes", async () => {
  const dir = await makeTestDir("cli-fail");
  const store = ["--store", `${dir}/store`];
  const failing = await sent(["reproduce", ...store], {
    env: { SENT_FIXTURE_FAIL: "train[method=sent,seed=1]" },
  });
  assert.equal(failing.code, 1, failing.stderr);
  assert.match(failing.stderr, /failed\s+train\[method=sent,seed=1\]\s+planned failure/);
  const record = await latestRecord(dir);
  assert.equal(record.status, "failed");
  assert.deepEqual(nodesIn(record, ["failed"]), ["train[method=sent,seed=1]"]);
  assert.ok(nodesIn(record, ["skipped"]).includes("summary"));

  await sentOk(["reproduce", ...store]);
  const next = await latestRecord(dir);
  assert.ok(nodesIn(next).includes("train[method=sent,seed=1]"));
  assert.equal(nodesIn(next, ["ran", "recomputed", "cached"]).length, 12);
});

Deno.test("dag prints a text tree and a Mermaid flowchart of the nodes", async () => {
  const text = await sentOk(["dag"]);
  assert.ok(
    text.stdout.startsWith("source\n├── scale\n│   ├── train[method=grpo,seed=1]\n"),
    text.stdout,
  );
  assert.match(text.stdout, /12 nodes in 6 stages/);
  const mermaid = await sentOk([
    "dag",
    "--mermaid",
    "--set",
    "train.methods=sent",
    "--set",
    "runtime.seeds=1",
  ]);
  assert.match(mermaid.stdout, /^flowchart TD\n/);
  assert.match(mermaid.stdout, /n3\["train\[method=sent,seed=1\]"\]/);
  assert.equal(mermaid.stdout.match(/-->/g)?.length, 6);
});

Deno.test("the CLI rejects an unknown flag by name and lists the valid flags", async () => {
  const result = await sent(["reproduce", "--forse"]);
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /sent: unknown flag "--forse"; valid flags: --preset, --set, --device, --store, --jobs, --dry-run, --verify, --force, --mermaid, (--[a-z-]+, )*--help$/m,
  );
  const misplaced = await sent(["reproduce", "--mermaid"]);
  assert.equal(misplaced.code, 2);
  assert.match(
    misplaced.stderr,
    /flag --mermaid does not apply here; valid flags for reproduce: --preset, --set, --device, --store, --jobs, --dry-run, --verify/,
  );
  const command = await sent(["reproduse"]);
  assert.match(
    command.stderr,
    /unknown command "reproduse"; valid commands: reproduce, stage, status, dag, gc, report, publish, help/,
  );
  const jobs = await sent(["reproduce", "--jobs", "0"]);
  assert.match(jobs.stderr, /--jobs 0: expected a positive integer/);
  const device = await sent(["reproduce", "--device", "tpu"]);
  assert.match(device.stderr, /--device tpu: expected one of cpu, webgpu, cuda/);
  assert.equal(device.code, 2);
});

Deno.test("the CLI says clearly what is not implemented yet and exits 2", async () => {
  const empty = await sent(["reproduce"], { script: "tests/pipeline/_empty_cli.ts" });
  assert.equal(empty.code, 2);
  assert.match(
    empty.stderr,
    /sent reproduce: not implemented yet: no stages are registered \(.*exports an empty list\)/,
  );
  const emptyStatus = await sent(["status"], { script: "tests/pipeline/_empty_cli.ts" });
  assert.equal(emptyStatus.code, 2);
  const report = await sent(["report"]);
  assert.equal(report.code, 2);
  assert.match(
    report.stderr,
    /sent report: not implemented yet: it runs the "report" stage, which is not registered in .*fixture\/mod\.ts \(registered: source, scale, tally, train, evaluate, summary\)/,
  );
  const publish = await sent(["publish"]);
  assert.match(publish.stderr, /not implemented yet: it publishes the pages of the "report" stage/);
  const stage = await sent(["stage", "score"], { env: { SENT_FIXTURE_PLANNED: "score,report" } });
  assert.equal(stage.code, 2);
  assert.match(
    stage.stderr,
    /^sent stage: stage "score" is not implemented yet \(registered: source, scale, tally, train, evaluate, summary\)$/m,
  );
  const help = await sent(["--help"], { script: "pipeline/cli.ts" });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usage: deno task sent <command> \[flags\]/);
});

Deno.test("a misspelled stage name is an unknown stage, with the list and the nearest name", async () => {
  const result = await sent(["stage", "trian"], { env: { SENT_FIXTURE_PLANNED: "report" } });
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr.trim(),
    'sent stage: unknown stage "trian" (did you mean "train"?); stages: source, scale, tally, train, evaluate, summary; not implemented yet: report',
  );
});

Deno.test('"not implemented yet" follows only a run that succeeded', async () => {
  const dir = await makeTestDir("cli-planned");
  const store = ["--store", `${dir}/store`];
  const env = { SENT_FIXTURE_PLANNED: "report" };
  const failing = await sent(["reproduce", ...store], {
    env: { ...env, SENT_FIXTURE_FAIL: "train[method=sent,seed=1]" },
  });
  assert.equal(failing.code, 1);
  assert.doesNotMatch(failing.stdout + failing.stderr, /not implemented yet/);
  const ok = await sentOk(["reproduce", ...store], { env });
  assert.match(ok.stdout, /not implemented yet \(the pipeline stops here\): report/);
});

Deno.test("a --store that is a file, outside the writable folders or read-only is one line and exit 2", async () => {
  const dir = await makeTestDir("cli-store-paths");
  await Deno.writeTextFile(`${dir}/afile`, "");
  const cases: [string, RegExp][] = [
    [`${dir}/afile`, /is a file; expected a directory/],
    [
      "/tmp/sent-outside-store",
      /^sent reproduce: --store \/tmp\/sent-outside-store is outside the folders the pipeline may write \(the project folder \/[^)]*\); choose a store inside them$/,
    ],
  ];
  for (const [path, pattern] of cases) {
    for (const command of ["reproduce", "gc", "status"]) {
      const result = await sent([command, "--store", path]);
      assert.equal(result.code, 2, `${command} ${path}: ${result.stderr}`);
      assert.match(result.stderr.trim().replace(/^sent \w+/, "sent reproduce"), pattern);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
  }
});

const ROOT_WRITES_ANYWAY = writesIntoReadOnly();

Deno.test(
  `a read-only --store is one line and exit 2${
    ROOT_WRITES_ANYWAY ? " (skipped: this user writes into read-only folders, as root does)" : ""
  }`,
  { ignore: ROOT_WRITES_ANYWAY },
  async () => {
    const dir = await makeTestDir("cli-store-ro");
    await Deno.mkdir(`${dir}/ro`);
    await Deno.chmod(`${dir}/ro`, 0o555);
    try {
      const result = await sent(["reproduce", "--store", `${dir}/ro/store`]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^sent reproduce: --store .*\/ro\/store is not writable: /);
    } finally {
      await Deno.chmod(`${dir}/ro`, 0o755);
    }
  },
);

/** Whether this process can write into a folder whose mode forbids it (true as root). */
function writesIntoReadOnly(): boolean {
  Deno.mkdirSync(".sent/tmp", { recursive: true });
  const dir = Deno.makeTempDirSync({ dir: ".sent/tmp", prefix: "ro-probe-" });
  Deno.chmodSync(dir, 0o555);
  try {
    Deno.writeTextFileSync(`${dir}/x`, "");
    return true;
  } catch {
    return false;
  } finally {
    Deno.chmodSync(dir, 0o755);
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("a failed stage prints its message, not Deno's --allow advice or a stack, for data errors", async () => {
  const dir = await makeTestDir("cli-data-errors");
  await Deno.writeTextFile(`${dir}/aime24.jsonl`, '{"problem": "1+1", "answer": "2"}\n');
  const cases: [string[], RegExp][] = [
    [["--set", "data.task=no-such-set"], /no-such-set/],
    [["--set", "data.evalSets=[aime24]", "--set", `data.dir=${dir}/empty`], /fetch-data aime24/],
    [
      ["--set", "data.evalSets=[aime24]", "--set", `data.dir=${dir}`],
      /has sha256 [0-9a-f]+ \(expected/,
    ],
    [
      ["--set", "data.evalSets=[aime24]", "--set", "data.dir=/etc"],
      /reading .*aime24\.jsonl is not permitted|outside the folders the pipeline may read/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const result = await sent(
      ["stage", "dataset", "--store", `${dir}/store`, "--set", "data.trainProblems=5", ...args],
      { script: "pipeline/cli.ts" },
    );
    assert.notEqual(result.code, 0, args.join(" "));
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /run again with|^\s+at /m, result.stderr);
  }
});
