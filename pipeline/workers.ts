/**
 * The local executor of `--jobs N` (N > 1): N worker processes of this same Deno, started on
 * demand through the run's entry script (`<script> __worker`, worker.ts), each running one task
 * at a time with `threads` ORT threads (the run's budget split N ways).
 *
 * Workers run with the pipeline's permissions minus starting processes ({@link WORKER_FLAGS}).
 * Their stderr is read line by line and passed on, so progress shows as plain lines (a worker is
 * not a terminal) and lines of several workers never cut into each other. A worker that dies in
 * the middle of a task fails that task, naming its exit code, and the next task starts a new one.
 *
 * @module
 */

import type { Executor, Task } from "./executor.ts";
import { WORKER_FLAGS } from "./flags.ts";
import type { TaskResult } from "./task.ts";
import {
  type PoolTask,
  RESULT_MARK,
  WORKER_COMMAND,
  type WorkerMessage,
  type WorkerSession,
} from "./worker.ts";

/** Options of {@link workerPool}. */
export interface WorkerPoolOptions {
  /** Worker processes at most (`--jobs`). */
  size: number;
  /** ORT threads of each task. */
  threads: number;
  /** What every worker needs to rebuild the run's graph. */
  session: WorkerSession;
  /** The Deno executable to start ({@link workerDeno}). */
  deno: string;
  /** The run's entry script (absolute path), started with the worker command. */
  script: string;
  /** Where the workers' stderr lines go. */
  write: (line: string) => void;
}

/**
 * The Deno executable a worker may be started with: this process's own when the permissions
 * allow starting it, else `deno` from PATH (the pipeline set allows `run: deno`), else null.
 *
 * @returns The command, or null when no Deno may be started.
 */
export async function workerDeno(): Promise<string | null> {
  for (const command of [Deno.execPath(), "deno"]) {
    if ((await Deno.permissions.query({ name: "run", command })).state === "granted") {
      return command;
    }
  }
  return null;
}

/** One worker process and the task it runs. */
interface Worker {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  busy: ((message: WorkerMessage | null) => void) | null;
  exited: Promise<Deno.CommandStatus>;
  dead: boolean;
}

/**
 * Start the pool (workers start when the first tasks arrive).
 *
 * @param options Size, threads, session, executable, entry script, stderr sink.
 * @returns The executor.
 */
export function workerPool(options: WorkerPoolOptions): Executor {
  const encoder = new TextEncoder();
  const workers: Worker[] = [];
  let sequence = 0;

  const spawn = (): Worker => {
    const child = new Deno.Command(options.deno, {
      args: ["run", ...WORKER_FLAGS, options.script, WORKER_COMMAND],
      cwd: options.session.root,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const worker: Worker = {
      child,
      stdin: child.stdin.getWriter(),
      busy: null,
      exited: child.status,
      dead: false,
    };
    forwardLines(child.stderr, options.write);
    const stdoutDone = forwardLines(child.stdout, (line) => {
      if (!line.startsWith(RESULT_MARK)) return options.write(line);
      const message = JSON.parse(line.slice(RESULT_MARK.length)) as WorkerMessage;
      const waiting = worker.busy;
      worker.busy = null;
      waiting?.(message);
    });
    // Once the worker is gone and every line it wrote is read: a task still waiting failed.
    Promise.all([worker.exited, stdoutDone]).then(() => {
      worker.dead = true;
      const waiting = worker.busy;
      worker.busy = null;
      waiting?.(null);
    });
    worker.stdin.write(encoder.encode(JSON.stringify(options.session) + "\n")).catch(() => {});
    workers.push(worker);
    return worker;
  };

  const idle = () => workers.find((w) => !w.dead && w.busy === null) ?? spawn();

  return {
    name: `${options.size} local workers`,
    slots: options.size,
    threads: options.threads,
    async run(task: Task): Promise<TaskResult> {
      const t0 = performance.now();
      const worker = idle();
      const id = sequence++;
      const spec: PoolTask = {
        id,
        node: task.node,
        key: task.key,
        threads: task.threads,
        replace: task.replace,
        ...(task.shard === undefined ? {} : { shard: task.shard }),
      };
      const answer = new Promise<WorkerMessage | null>((resolve) => (worker.busy = resolve));
      await worker.stdin.write(encoder.encode(JSON.stringify(spec) + "\n")).catch(() => {});
      const message = await answer;
      const seconds = (performance.now() - t0) / 1000;
      if (message === null) {
        const status = await worker.exited;
        const how = status.signal
          ? `was killed by ${status.signal}`
          : `exited with code ${status.code}`;
        return {
          ok: false,
          seconds,
          error: `worker process ${worker.child.pid} ${how} while running ${task.label}`,
        };
      }
      if ("fatal" in message) {
        worker.dead = true;
        return { ok: false, seconds, error: `worker process could not start: ${message.fatal}` };
      }
      return message.result;
    },
    abort() {
      for (const worker of workers) {
        if (worker.dead) continue;
        try {
          worker.child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
      }
    },
    async close() {
      // Closing stdin ends a worker (worker.ts); wait so none outlives the store lock.
      for (const worker of workers) await worker.stdin.close().catch(() => {});
      await Promise.all(workers.map((worker) => worker.exited));
    },
  };
}

/** Read a stream line by line in the background, handing each line to `sink`; resolves at its end. */
function forwardLines(
  stream: ReadableStream<Uint8Array>,
  sink: (line: string) => void,
): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of stream) {
      buffer += decoder.decode(chunk, { stream: true });
      let at;
      while ((at = buffer.indexOf("\n")) >= 0) {
        sink(buffer.slice(0, at).replace(/\r$/, ""));
        buffer = buffer.slice(at + 1);
      }
    }
    if (buffer !== "") sink(buffer);
  })().catch(() => {});
}
