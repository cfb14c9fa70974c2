/**
 * Executors: where the runner's tasks (whole nodes and shards, see task.ts) run.
 *
 * | executor                    | chosen by                   | a task runs in                   |
 * | --------------------------- | --------------------------- | -------------------------------- |
 * | in-process                  | `--jobs 1` (the default)    | the run's own process            |
 * | local workers (workers.ts)  | `--jobs N`, N > 1           | one of N worker processes        |
 * | SLURM (slurm.ts)            | `--executor slurm`          | one task of a SLURM job array    |
 *
 * Whatever the executor, the run's process keeps the store lock, checks the cache, merges shards
 * and writes the run record; a task only commits its artifact through the store's atomic rename.
 * Results do not depend on the executor: a task's inputs are its node's key, and each executor
 * hands the stage its share of the thread budget.
 *
 * @module
 */

import type { PipelineNode } from "./graph.ts";
import { describeFailure, runTask, type TaskEnv, type TaskResult, type TaskSpec } from "./task.ts";

/** A task as the runner hands it to an executor. */
export interface Task extends TaskSpec {
  /** The node (the in-process executor runs it from this). */
  target: PipelineNode;
  /** Node or shard id, for messages. */
  label: string;
}

/** Where tasks run. */
export interface Executor {
  /** Name for the run's first line, e.g. `in-process`, `2 local workers`, `slurm`. */
  readonly name: string;
  /** Most tasks running at once (`Infinity`: the cluster decides). */
  readonly slots: number;
  /** ORT threads each task gets. */
  readonly threads: number;
  /**
   * Run one task; resolves when its artifact is committed or it has failed (never rejects for a
   * failure of the stage).
   * @param task The task.
   */
  run(task: Task): Promise<TaskResult>;
  /** Stop whatever runs now, synchronously (signal handlers call it right before exiting). */
  abort(): void;
  /** Release workers and other resources at the end of the run. */
  close(): Promise<void>;
}

/**
 * The executor of `--jobs 1`: each task runs in this process, one at a time.
 *
 * @param env Store, device, run id, versions and the runner's artifacts.
 * @param threads ORT threads of each task (the whole budget).
 * @returns The executor.
 */
export function inProcessExecutor(env: TaskEnv, threads: number): Executor {
  return {
    name: "in-process",
    slots: 1,
    threads,
    async run(task) {
      const t0 = performance.now();
      try {
        await runTask(task.target, task, env);
        return { ok: true, seconds: (performance.now() - t0) / 1000 };
      } catch (error) {
        return { ok: false, seconds: (performance.now() - t0) / 1000, ...describeFailure(error) };
      }
    },
    abort() {},
    close: () => Promise.resolve(),
  };
}

/** A place in the queue for one of the executor's slots ({@link Slots.ticket}). */
export interface Ticket {
  /** True once the slot is this ticket's; false when the queue was closed first. */
  readonly granted: Promise<boolean>;
  /** Give the slot back (after the task), or leave the queue (never needed it). Idempotent. */
  release(): void;
}

/**
 * A counting semaphore with a FIFO queue of tickets: at most `size` tickets hold a slot at once,
 * and slots go to tickets in the order the tickets were taken, whenever their holders come to
 * wait for them. So nodes start in graph order, as they did when one node ran at a time, however
 * long their cache checks take. Once closed, waiting and later tickets are turned away.
 */
export class Slots {
  readonly #size: number;
  #held = 0;
  #closed = false;
  readonly #queue: { grant: (ok: boolean) => void; state: "queued" | "holding" | "done" }[] = [];

  /**
   * @param size Most holders at once (≥ 1, or Infinity).
   */
  constructor(size: number) {
    this.#size = Math.max(1, size);
  }

  /**
   * Take a ticket, now, for a slot later.
   * @returns The ticket.
   */
  ticket(): Ticket {
    let grant!: (ok: boolean) => void;
    const granted = new Promise<boolean>((resolve) => (grant = resolve));
    const entry = { grant, state: "queued" as "queued" | "holding" | "done" };
    if (this.#closed) {
      entry.state = "done";
      grant(false);
    } else {
      this.#queue.push(entry);
      this.#pump();
    }
    return {
      granted,
      release: () => {
        if (entry.state === "holding") this.#held--;
        if (entry.state === "queued") this.#queue.splice(this.#queue.indexOf(entry), 1);
        if (entry.state !== "done") grant(false);
        entry.state = "done";
        this.#pump();
      },
    };
  }

  /** Turn away every queued ticket and every later one. */
  close(): void {
    this.#closed = true;
    for (const entry of this.#queue.splice(0)) {
      entry.state = "done";
      entry.grant(false);
    }
  }

  #pump(): void {
    while (this.#held < this.#size && this.#queue.length > 0) {
      const entry = this.#queue.shift()!;
      entry.state = "holding";
      this.#held++;
      entry.grant(true);
    }
  }
}
