/**
 * The worker side of the local and SLURM executors: `<cli> __worker` runs tasks (task.ts) for a
 * run that holds the store lock elsewhere.
 *
 * A worker rebuilds the run's graph from the same config (preset, `--set` overrides, device)
 * and the same stage registry (it is started through the run's own entry script, so a test's
 * fixture registry is found the same way), then runs each task it is given and commits the
 * artifact through the store's atomic rename. It never takes the store lock.
 *
 * - Local pool (`__worker`, no arguments): the session comes as the first line on stdin, then one
 *   task per line; each result goes back as one stdout line starting with {@link RESULT_MARK}
 *   (other stdout lines are the stage's own and are passed on). The worker holds a shared lock on
 *   the workers' lock file (store_lock.ts) and exits the moment stdin closes: a run that ends,
 *   however it ends, takes its workers with it.
 * - SLURM job (`__worker --tasks FILE --index N`): task N of the tasks file, its result written
 *   to `result-N.json` beside the file; the exit code says whether it succeeded.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadConfig } from "./config.ts";
import { buildGraph, type PipelineGraph } from "./graph.ts";
import { writeJsonAtomic } from "./records.ts";
import type { Device, Stage } from "./stage.ts";
import { ArtifactStore } from "./store.ts";
import { holdWorkerLock } from "./store_lock.ts";
import { describeFailure, runTask, type TaskEnv, type TaskResult, type TaskSpec } from "./task.ts";

/** The hidden CLI command that starts a worker. */
export const WORKER_COMMAND = "__worker";

/** Prefix of the stdout lines that carry a pool worker's messages. */
export const RESULT_MARK = "\u001eSENT ";

/** What a worker needs to rebuild the run's graph and commit like the run would. */
export interface WorkerSession {
  /** Project root (deno.json, stage modules). */
  root: string;
  /** Absolute store directory. */
  store: string;
  /** `--preset`, when given. */
  preset?: string;
  /** `--set` overrides. */
  sets: string[];
  /** `--device`, when given. */
  device?: string;
  /** Id of the run, recorded in manifests. */
  runId: string;
  /** Tool versions of the run, recorded in manifests. */
  versions: Record<string, string>;
}

/** A pool worker's message: one task's result, or why it cannot run anything. */
export type WorkerMessage =
  | { id: number; result: TaskResult }
  | { fatal: string };

/** A task sent to a pool worker. */
export interface PoolTask extends TaskSpec {
  /** Sequence number, echoed in the result. */
  id: number;
}

/** The tasks file of one SLURM submission. */
export interface JobTasks {
  /** The run's session. */
  session: WorkerSession;
  /** Task `i` is array index `i`. */
  tasks: TaskSpec[];
}

/**
 * Run as a worker.
 *
 * @param argv Arguments after the worker command.
 * @param stages The entry script's stage registry.
 * @returns Exit code: 0 done, 1 the task failed (SLURM), 2 the session or arguments are bad.
 */
export async function workerMain(argv: string[], stages: readonly Stage[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { tasks: { type: "string" }, index: { type: "string" } },
  });
  if (values.tasks !== undefined) {
    const index = Number(values.index);
    if (!Number.isInteger(index) || index < 0) {
      console.error(`sent ${WORKER_COMMAND}: --index ${values.index}: expected an integer ≥ 0`);
      return 2;
    }
    return await runJobTask(values.tasks, index, stages);
  }
  return await servePool(stages);
}

/** The graph and task environment a session describes. */
async function openSession(
  session: WorkerSession,
  stages: readonly Stage[],
): Promise<{ graph: PipelineGraph; env: TaskEnv }> {
  const config = await loadConfig({
    preset: session.preset,
    sets: session.sets,
    device: session.device,
  });
  const graph = await buildGraph(stages, config, { root: session.root });
  const env: TaskEnv = {
    store: new ArtifactStore(session.store),
    device: (config.values.runtime as { device: Device }).device,
    runId: session.runId,
    versions: session.versions,
    artifacts: new Map(),
  };
  return { graph, env };
}

/** Run one task of a graph; failures become results. */
async function runOne(graph: PipelineGraph, env: TaskEnv, spec: TaskSpec): Promise<TaskResult> {
  const t0 = performance.now();
  try {
    const node = graph.byId.get(spec.node);
    if (!node) throw new Error(`node ${spec.node} is not in this worker's graph`);
    // Upstream artifacts are read afresh for every task (a forced run may replace them).
    await runTask(node, spec, { ...env, artifacts: new Map() });
    return { ok: true, seconds: (performance.now() - t0) / 1000 };
  } catch (error) {
    return { ok: false, seconds: (performance.now() - t0) / 1000, ...describeFailure(error) };
  }
}

// ── local pool ────────────────────────────────────────────────────────────────────────────

async function servePool(stages: readonly Stage[]): Promise<number> {
  const lines = stdinLines();
  const first = await lines.next();
  if (first === null) return 0;
  const session = JSON.parse(first) as WorkerSession;
  let opened;
  try {
    opened = await openSession(session, stages);
  } catch (error) {
    send({ fatal: describeFailure(error).error });
    return 2;
  }
  await holdWorkerLock(`${session.store}/.lock`);
  while (true) {
    const line = await lines.next();
    if (line === null) return 0;
    const task = JSON.parse(line) as PoolTask;
    const result = await runOne(opened.graph, opened.env, task);
    send({ id: task.id, result });
  }
}

function send(message: WorkerMessage): void {
  const bytes = new TextEncoder().encode(`${RESULT_MARK}${JSON.stringify(message)}\n`);
  let offset = 0;
  while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
}

/**
 * Lines of stdin, read in the background: a line waits in a queue until asked for, and the end
 * of stdin (the run has gone) ends the process at once, even in the middle of a task.
 */
function stdinLines(): { next(): Promise<string | null> } {
  const queue: string[] = [];
  const waiters: ((line: string | null) => void)[] = [];
  const deliver = (line: string) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line);
    else queue.push(line);
  };
  (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of Deno.stdin.readable) {
      buffer += decoder.decode(chunk, { stream: true });
      let at;
      while ((at = buffer.indexOf("\n")) >= 0) {
        deliver(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
      }
    }
  })().catch(() => {}).finally(() => {
    // Whatever was being done belongs to a run that no longer holds the store lock.
    if (waiters.length > 0) waiters.splice(0).forEach((waiter) => waiter(null));
    else Deno.exit(0);
  });
  return {
    next: () =>
      queue.length > 0
        ? Promise.resolve(queue.shift()!)
        : new Promise((resolve) => waiters.push(resolve)),
  };
}

// ── SLURM job ─────────────────────────────────────────────────────────────────────────────

/**
 * Path of the result file of array index `index` of a tasks file.
 *
 * @param tasksFile The tasks file.
 * @param index Array index.
 * @returns `result-<index>.json` in the same folder.
 */
export function resultPath(tasksFile: string, index: number): string {
  return `${tasksFile.replace(/\/[^/]+$/, "")}/result-${index}.json`;
}

async function runJobTask(file: string, index: number, stages: readonly Stage[]): Promise<number> {
  const { session, tasks } = JSON.parse(await Deno.readTextFile(file)) as JobTasks;
  const spec = tasks[index];
  if (spec === undefined) {
    console.error(`sent ${WORKER_COMMAND}: ${file} has ${tasks.length} tasks; no index ${index}`);
    return 2;
  }
  const t0 = performance.now();
  let result: TaskResult;
  try {
    const { graph, env } = await openSession(session, stages);
    result = await runOne(graph, env, spec);
  } catch (error) {
    result = { ok: false, seconds: (performance.now() - t0) / 1000, ...describeFailure(error) };
  }
  if (result.stack) console.error(result.stack);
  console.error(
    result.ok
      ? `done: ${spec.node}${spec.shard === undefined ? "" : ` shard ${spec.shard}`} in ${
        result.seconds.toFixed(2)
      } s`
      : `failed: ${result.error}`,
  );
  await writeJsonAtomic(resultPath(file, index), result);
  return result.ok ? 0 : 1;
}
