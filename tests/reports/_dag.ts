/**
 * The real DAG on the `test` preset, run once per `deno test` process into a fresh store and
 * shared by the report test files (about 5–10 s): `reproduce --preset test --store <tmp>/store`,
 * ending with `report: PATH`.
 */

import { ROOT, sent, type SentResult } from "../pipeline/_harness.ts";

/** A finished run of the test preset. */
export interface TestRun {
  /** Folder holding `store/`, `runs/` and `sent.lock.json`. */
  root: string;
  /** The store. */
  store: string;
  /** The report artifact folder (where `report: PATH` points). */
  reportDir: string;
  /** The results stage's results.json. */
  resultsFile: string;
  /** The CLI's output. */
  output: SentResult;
}

let run: Promise<TestRun> | null = null;

/**
 * Run the CLI on the shared test store.
 *
 * @param root The folder of {@link testPresetRun}.
 * @param args Command and flags (the preset and store are added).
 * @returns Exit code and output.
 */
export function sentOnStore(root: string, ...args: string[]): Promise<SentResult> {
  return sent([...args, "--preset", "test", "--store", `${root}/store`], {
    script: "pipeline/cli.ts",
  });
}

/** Make the run, or read the one another test file of this process made. */
async function makeOrReuse(): Promise<TestRun> {
  // Deno runs each test file in its own isolate but one process: the pid names this test
  // process, so its files share one run and a later `deno test` makes a fresh one.
  const root = `${ROOT}/.sent/tmp/reports-dag-${Deno.pid}`;
  const done = `${root}/run.json`;
  try {
    return JSON.parse(await Deno.readTextFile(done)) as TestRun;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  await Deno.mkdir(root, { recursive: true });
  const output = await sentOnStore(root, "reproduce");
  if (output.code !== 0) {
    throw new Error(`reproduce --preset test failed:\n${output.stdout}\n${output.stderr}`);
  }
  const report = /^report: (.+)\/index\.html$/m.exec(output.stdout)?.[1];
  const results = /^results: (.+)$/m.exec(output.stdout)?.[1];
  if (!report || !results) {
    throw new Error(`no "report: PATH" or "results: PATH" line in\n${output.stdout}`);
  }
  const made: TestRun = {
    root,
    store: `${root}/store`,
    reportDir: report,
    resultsFile: results,
    output,
  };
  await Deno.writeTextFile(done, JSON.stringify(made));
  return made;
}

/**
 * The test preset's run, made on first call in this test process.
 *
 * @returns Where its report and results are.
 */
export function testPresetRun(): Promise<TestRun> {
  run ??= makeOrReuse();
  return run;
}
