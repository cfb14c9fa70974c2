/**
 * Running the real CLI as a subprocess for the engine's tests, with the fixture stages
 * (`_fixture_cli.ts`) or the real registry (`pipeline/cli.ts`), and reading what it left behind.
 */

import type { LockFile, RunRecord } from "../../pipeline/records.ts";
import { PIPELINE_FLAGS } from "../../pipeline/bench_pipeline.ts";

export { PIPELINE_FLAGS };

/** Repository root (the tests' working directory for subprocesses). */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

const FIXTURE_CLI = `${ROOT}/tests/pipeline/_fixture_cli.ts`;

/** The Deno to run: this process's own, so that `deno` need not be on PATH (as under npx). */
const DENO = Deno.execPath();

/** Options for {@link sent} and {@link spawnSent}. */
export interface SentOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Stage registry module for the fixture CLI (default: tests/pipeline/fixture/mod.ts). */
  stages?: string;
  /** Script to run instead of the fixture CLI (e.g. the real pipeline/cli.ts). */
  script?: string;
}

/** Output of a finished CLI process. */
export interface SentResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Start the CLI without waiting.
 * @param args CLI arguments.
 * @param options Environment, registry, script.
 * @returns The child process (stdout and stderr piped).
 */
export function spawnSent(args: string[], options: SentOptions = {}): Deno.ChildProcess {
  const env: Record<string, string> = { NO_COLOR: "1", ...options.env };
  if (options.stages) env.SENT_FIXTURE_STAGES = options.stages;
  return new Deno.Command(DENO, {
    args: ["run", ...PIPELINE_FLAGS, options.script ?? FIXTURE_CLI, ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Run the CLI to completion.
 * @param args CLI arguments.
 * @param options Environment, registry, script.
 * @returns Exit code and output.
 */
export async function sent(args: string[], options: SentOptions = {}): Promise<SentResult> {
  const output = await spawnSent(args, options).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * Run the CLI and fail with its output unless it exits 0.
 * @param args CLI arguments.
 * @param options Environment, registry, script.
 * @returns Exit code and output.
 */
export async function sentOk(args: string[], options: SentOptions = {}): Promise<SentResult> {
  const result = await sent(args, options);
  if (result.code !== 0) {
    throw new Error(
      `sent ${args.join(" ")} exited ${result.code}\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result;
}

/**
 * The newest run record of a state directory.
 * @param stateDir Directory holding `runs/`.
 * @returns The record.
 */
export async function latestRecord(stateDir: string): Promise<RunRecord> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${stateDir}/runs`)) names.push(entry.name);
  names.sort();
  return JSON.parse(await Deno.readTextFile(`${stateDir}/runs/${names[names.length - 1]}`));
}

/**
 * Every run record of a state directory, oldest first.
 * @param stateDir Directory holding `runs/`.
 * @returns The records.
 */
export async function allRecords(stateDir: string): Promise<RunRecord[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(`${stateDir}/runs`)) names.push(entry.name);
  names.sort();
  return await Promise.all(
    names.map(async (name) => JSON.parse(await Deno.readTextFile(`${stateDir}/runs/${name}`))),
  );
}

/**
 * Node ids of a run record in a given state, sorted.
 * @param record Run record.
 * @param states States to select (default: ran and recomputed).
 * @returns Sorted node ids.
 */
export function nodesIn(
  record: RunRecord,
  states: readonly string[] = ["ran", "recomputed"],
): string[] {
  return record.nodes.filter((node) => states.includes(node.state)).map((node) => node.node).sort();
}

/**
 * Read the lock file of a state directory.
 * @param stateDir Directory holding `sent.lock.json`.
 * @returns The lock file.
 */
export async function readLock(stateDir: string): Promise<LockFile> {
  return JSON.parse(await Deno.readTextFile(`${stateDir}/sent.lock.json`));
}

/**
 * Copy the fixture stages into a directory (same depth below the root, so their relative
 * imports of pipeline/ still resolve), for tests that edit stage sources.
 * @param dir Directory directly under `.sent/tmp/`.
 * @returns Path of the copied `mod.ts`.
 */
export async function copyFixture(dir: string): Promise<string> {
  const depth = dir.slice(ROOT.length + 1).split("/").length;
  if (depth !== 3) {
    throw new Error(
      `copyFixture: ${dir} must be 3 levels below ${ROOT}, like tests/pipeline/fixture`,
    );
  }
  for await (const entry of Deno.readDir(`${ROOT}/tests/pipeline/fixture`)) {
    await Deno.copyFile(`${ROOT}/tests/pipeline/fixture/${entry.name}`, `${dir}/${entry.name}`);
  }
  return `${dir}/mod.ts`;
}

/** The 12 node ids of the fixture with the tiny preset. */
export const FIXTURE_NODES = [
  "evaluate[method=grpo,seed=1]",
  "evaluate[method=grpo,seed=2]",
  "evaluate[method=sent,seed=1]",
  "evaluate[method=sent,seed=2]",
  "scale",
  "source",
  "summary",
  "tally",
  "train[method=grpo,seed=1]",
  "train[method=grpo,seed=2]",
  "train[method=sent,seed=1]",
  "train[method=sent,seed=2]",
];

/**
 * Wait until a file exists.
 * @param path File to wait for.
 * @param timeoutMs Give up after this long.
 */
export async function waitForFile(path: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  throw new Error(`timed out waiting for ${path}`);
}

/**
 * Make a symlink. Deno grants `Deno.symlink` only with unscoped read and write permissions,
 * which the test set does not have, so a `deno eval` child (which runs with every permission)
 * makes it: the same thing a user does with `ln -s`.
 * @param target What the link points to.
 * @param path The link.
 */
export async function symlink(target: string, path: string): Promise<void> {
  const out = await new Deno.Command(DENO, {
    args: ["eval", `Deno.symlinkSync(${JSON.stringify(target)}, ${JSON.stringify(path)})`],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`symlink ${path} → ${target}: ${new TextDecoder().decode(out.stderr)}`);
  }
}
