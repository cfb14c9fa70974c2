/**
 * The SLURM executor (`--executor slurm`): tasks (shards and whole nodes) go to the cluster as
 * job arrays, one array per batch of tasks that become ready together; the run's own process
 * keeps the store lock, polls the jobs, resubmits failed ones and merges shards.
 *
 * Requirements: the project folder (code, node_modules) and the store are on storage every
 * compute node mounts at the same path, and `deno` is at the same path there (the job runs this
 * process's `Deno.execPath()`). The run needs permission to start `sbatch`, `squeue`, `sacct` and
 * `scancel`; the jobs themselves run with the pipeline's permissions minus starting processes.
 *
 * One submission ("wave") is a folder `<state dir>/slurm/<run id>/wave-<n>/` holding
 * `tasks.json` (the session and one task per array index), `job.sh`, each task's log
 * `task-<index>.log` (stdout and stderr) and result `result-<index>.json`. Job options come from
 * the config's `executor.*` keys: partition, time, GPUs and CPUs per task (the CPUs are the
 * task's ORT threads), a cap on tasks running at once, and extra `sbatch` flags.
 *
 * Polling (every `executor.pollSeconds`): `squeue --states=all` lists each array task's state
 * while slurmctld remembers the job (MinJobAge, 300 s by default), `sacct` after that when
 * accounting is on. Each change of state is printed. A task that ends without a successful
 * result (FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, …, or a stage error) is
 * resubmitted, up to `executor.retries` more times; then it fails with its last state and its
 * log file named.
 *
 * @module
 */

import type { Executor, Task } from "./executor.ts";
import { WORKER_FLAGS } from "./flags.ts";
import { writeJsonAtomic } from "./records.ts";
import type { TaskResult, TaskSpec } from "./task.ts";
import { type JobTasks, resultPath, WORKER_COMMAND, type WorkerSession } from "./worker.ts";

/** The `executor.*` config keys the SLURM executor reads. */
export interface SlurmConfig {
  /** `--partition`; empty: the cluster's default. */
  partition: string;
  /** `--time` (e.g. `02:00:00`); empty: the partition's default. */
  time: string;
  /** `--gpus-per-task`; 0: none requested. */
  gpusPerTask: number;
  /** `--cpus-per-task`, also each task's ORT threads. */
  cpusPerTask: number;
  /** Most array tasks running at once (`--array=…%N`); 0: no cap. */
  maxRunning: number;
  /** More `sbatch` flags, passed as they are. */
  sbatchFlags: string[];
  /** Resubmissions of a failed task before the run gives up on it. */
  retries: number;
  /** Seconds between two polls of the job states. */
  pollSeconds: number;
}

/** The cluster commands the executor starts. */
export const SLURM_COMMANDS = ["sbatch", "squeue", "sacct", "scancel"] as const;

/** Job states after which a task will not run again by itself. */
const FINAL_STATES = new Set([
  "COMPLETED",
  "FAILED",
  "CANCELLED",
  "TIMEOUT",
  "NODE_FAIL",
  "OUT_OF_MEMORY",
  "PREEMPTED",
  "BOOT_FAIL",
  "DEADLINE",
  "REVOKED",
  "SPECIAL_EXIT",
  // Ours: no longer listed, unknown to sacct, and no result although its log shows it started.
  "LOST",
]);

/** Options of {@link slurmExecutor}. */
export interface SlurmExecutorOptions {
  /** The `executor.*` keys. */
  config: SlurmConfig;
  /** What every job needs to rebuild the run's graph. */
  session: WorkerSession;
  /** The Deno executable the jobs run (same path on the compute nodes). */
  deno: string;
  /** The run's entry script (absolute path). */
  script: string;
  /** Folder of this run's submissions, e.g. `<state dir>/slurm/<run id>`. */
  dir: string;
  /** Status lines. */
  write: (line: string) => void;
  /** Width of the task column in status lines. */
  width?: number;
  /**
   * File listing the jobs of the run in progress (`<state dir>/slurm/active.json`): a run that
   * finds one left by a run that never finished cancels those jobs before it submits its own.
   */
  activeFile: string;
}

/** Content of the active-jobs file. */
interface ActiveJobs {
  /** The run that submitted them. */
  run: string;
  /** Job ids. */
  jobs: string[];
}

/** A task waiting for its result, over its submissions. */
interface Entry {
  task: Task;
  attempt: number;
  resolve: (result: TaskResult) => void;
  t0: number;
  /** Where the current submission put it. */
  job?: { id: string; index: number; dir: string; state: string };
}

/**
 * Create the SLURM executor.
 *
 * @param options Config, session, executable, entry script, submission folder, output.
 * @returns The executor (`slots` is unlimited: the cluster schedules).
 */
export function slurmExecutor(options: SlurmExecutorOptions): Executor {
  const { config } = options;
  const queued: Entry[] = [];
  const running = new Set<Entry>();
  let waves = 0;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let polling: Promise<void> | null = null;
  let closed = false;
  const width = options.width ?? 0;
  const say = (state: string, label: string, detail: string) =>
    options.write(`  ${state.padEnd(10)} ${label.padEnd(width)}  ${detail}`);

  const jobIds: string[] = [];
  let leftoversChecked = false;

  const flush = async () => {
    flushTimer = undefined;
    const batch = queued.splice(0);
    if (batch.length === 0) return;
    if (!leftoversChecked) {
      leftoversChecked = true;
      await cancelLeftovers(options.activeFile, options.write);
    }
    await submit(batch);
    if (!polling) polling = pollLoop().finally(() => (polling = null));
  };

  const submit = async (batch: Entry[]) => {
    const dir = `${options.dir}/wave-${++waves}`;
    await Deno.mkdir(dir, { recursive: true });
    const tasks: TaskSpec[] = batch.map(({ task }) => ({
      node: task.node,
      key: task.key,
      threads: task.threads,
      replace: task.replace,
      ...(task.shard === undefined ? {} : { shard: task.shard }),
    }));
    const file: JobTasks = { session: options.session, tasks };
    await writeJsonAtomic(`${dir}/tasks.json`, file);
    await Deno.writeTextFile(`${dir}/job.sh`, jobScript(options, `${dir}/tasks.json`));
    const args = sbatchArgs(config, batch.length, dir, options.session.root, batch[0].task);
    const out = await command("sbatch", args);
    const id = out.code === 0 ? out.stdout.trim().split(";")[0] : "";
    if (!/^\d+$/.test(id)) {
      const why = (out.stderr.trim().split("\n").pop() ?? "") || `output "${out.stdout.trim()}"`;
      for (const entry of batch) {
        finish(entry, { ok: false, seconds: 0, error: `sbatch refused the job: ${why}` });
      }
      return;
    }
    jobIds.push(id);
    const active: ActiveJobs = { run: options.session.runId, jobs: jobIds };
    await writeJsonAtomic(options.activeFile, active);
    batch.forEach((entry, index) => {
      entry.job = { id, index, dir, state: "SUBMITTED" };
      running.add(entry);
      say("slurm", entry.task.label, `job ${id}_${index} submitted (log ${logOf(entry)})`);
    });
  };

  const finish = (entry: Entry, result: TaskResult) => {
    running.delete(entry);
    entry.resolve({ ...result, attempts: entry.attempt });
  };

  const pollLoop = async () => {
    while (running.size > 0 && !closed) {
      await sleep(config.pollSeconds * 1000);
      if (closed) return;
      const again: Entry[] = [];
      for (const [id, entries] of groupByJob(running)) {
        const states = await jobStates(id);
        // squeue did not answer (controller busy or down): ask again at the next poll.
        if (states === null) continue;
        for (const entry of entries) {
          const job = entry.job!;
          const state = states.get(job.index) ?? (await missingState(entry));
          if (state !== job.state) {
            job.state = state;
            if (!FINAL_STATES.has(state) || state !== "COMPLETED") {
              say("slurm", entry.task.label, `job ${id}_${job.index} ${state}`);
            }
          }
          if (!FINAL_STATES.has(state)) continue;
          const result = await readResult(entry);
          if (state === "COMPLETED" && result?.ok) {
            say("slurm", entry.task.label, `job ${id}_${job.index} COMPLETED`);
            finish(entry, { ...result, log: logOf(entry) });
            continue;
          }
          const why = result && !result.ok
            ? `${state}: ${result.error}`
            : `${state}${state === "COMPLETED" ? " without a result" : ""}`;
          if (entry.attempt <= config.retries) {
            running.delete(entry);
            entry.attempt++;
            say(
              "resubmit",
              entry.task.label,
              `job ${id}_${job.index} ${why}; attempt ${entry.attempt} of ${config.retries + 1}`,
            );
            again.push(entry);
          } else {
            const tries = entry.attempt > 1 ? ` (after ${entry.attempt} attempts)` : "";
            const log = logOf(entry);
            const unwritten = (await exists(log)) ? "" : " (not written: the task never started)";
            finish(entry, {
              ok: false,
              seconds: result?.seconds ?? (performance.now() - entry.t0) / 1000,
              error: `SLURM job ${id}_${job.index} ${why}${tries}; log: ${log}${unwritten}`,
              log: logOf(entry),
              ...(result?.stack ? { stack: result.stack } : {}),
            });
          }
        }
      }
      if (again.length > 0) await submit(again);
    }
  };

  return {
    name: "slurm",
    slots: Infinity,
    threads: config.cpusPerTask,
    run(task: Task): Promise<TaskResult> {
      return new Promise((resolve) => {
        queued.push({ task, attempt: 1, resolve, t0: performance.now() });
        // Tasks that become ready together go out as one array.
        flushTimer ??= setTimeout(() => void flush(), 100);
      });
    },
    abort() {
      const ids = [...new Set([...running].map((entry) => entry.job!.id))];
      if (ids.length === 0) return;
      try {
        new Deno.Command("scancel", { args: ids, stdout: "null", stderr: "null" }).outputSync();
      } catch {
        // Nothing more can be done from a signal handler.
      }
    },
    async close() {
      closed = true;
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      await polling;
      // Every job of this run has ended (or the run stops here and cancels the rest).
      const left = [...new Set([...running].map((entry) => entry.job!.id))];
      if (left.length > 0) await command("scancel", left);
      if (jobIds.length > 0) await Deno.remove(options.activeFile).catch(() => {});
    },
  };
}

/**
 * The `sbatch` arguments of one submission.
 *
 * @param config The `executor.*` keys.
 * @param count Array tasks.
 * @param dir The submission's folder.
 * @param root Project root (the jobs' working directory).
 * @param first The first task (names the job).
 * @returns Arguments, the job script last.
 */
export function sbatchArgs(
  config: SlurmConfig,
  count: number,
  dir: string,
  root: string,
  first: Pick<Task, "node">,
): string[] {
  const cap = config.maxRunning > 0 ? `%${config.maxRunning}` : "";
  return [
    "--parsable",
    `--array=0-${count - 1}${cap}`,
    `--job-name=sent-${first.node.replace(/[^A-Za-z0-9_.=-]+/g, "_").replace(/^_+|_+$/g, "")}`,
    `--output=${dir}/task-%a.log`,
    `--chdir=${root}`,
    `--cpus-per-task=${config.cpusPerTask}`,
    ...(config.partition ? [`--partition=${config.partition}`] : []),
    ...(config.time ? [`--time=${config.time}`] : []),
    ...(config.gpusPerTask > 0 ? [`--gpus-per-task=${config.gpusPerTask}`] : []),
    ...config.sbatchFlags,
    `${dir}/job.sh`,
  ];
}

/**
 * Cancel the jobs an earlier run left on the cluster (it was killed before it could cancel
 * them): they would otherwise write into the store while this run uses it.
 */
async function cancelLeftovers(file: string, write: (line: string) => void): Promise<void> {
  let active: ActiveJobs;
  try {
    active = JSON.parse(await Deno.readTextFile(file));
  } catch {
    return; // none, or unreadable: nothing is known to be running
  }
  const live: string[] = [];
  for (const id of active.jobs ?? []) {
    const states = await jobStates(id);
    if (states && [...states.values()].some((state) => !FINAL_STATES.has(state))) live.push(id);
  }
  if (live.length > 0) {
    await command("scancel", live);
    write(
      `cancelled SLURM job${live.length === 1 ? "" : "s"} ${
        live.join(", ")
      } left running by run ${active.run}, which ended without cancelling them`,
    );
  }
  await Deno.remove(file).catch(() => {});
}

/** The job script: array index N runs task N of the tasks file. */
function jobScript(options: SlurmExecutorOptions, tasksFile: string): string {
  const words = [
    options.deno,
    "run",
    ...WORKER_FLAGS,
    options.script,
    WORKER_COMMAND,
    "--tasks",
    tasksFile,
    "--index",
  ];
  return [
    "#!/bin/bash",
    "# One task of a sent job array (written by pipeline/slurm.ts): index N runs task N.",
    `exec ${words.map(shellQuote).join(" ")} "$SLURM_ARRAY_TASK_ID"`,
    "",
  ].join("\n");
}

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

function logOf(entry: Entry): string {
  return `${entry.job!.dir}/task-${entry.job!.index}.log`;
}

function groupByJob(entries: Iterable<Entry>): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  for (const entry of entries) {
    const id = entry.job!.id;
    if (!out.has(id)) out.set(id, []);
    out.get(id)!.push(entry);
  }
  return out;
}

/**
 * Array index → state of a job's tasks, from squeue (finished tasks included while slurmctld
 * remembers them); empty when slurmctld no longer knows the job; null when squeue failed.
 */
async function jobStates(id: string): Promise<Map<number, string> | null> {
  const out = await command("squeue", ["-h", "-r", "--states=all", "-j", id, "-o", "%i|%T"]);
  if (out.code === 0) return parseStates(id, out.stdout);
  return /Invalid job id/i.test(out.stderr) ? new Map() : null;
}

/**
 * The state of a task squeue does not list: sacct's when accounting is on; else what its files
 * say. A task cancelled while pending leaves squeue at once without a trace (and without
 * accounting, sacct has none either): no result and no log means it never started, so it was
 * cancelled; a log without a result means it started and was lost.
 */
async function missingState(entry: Entry): Promise<string> {
  const { id, index } = entry.job!;
  const query = ["-n", "-P", "-X", "-j", `${id}_${index}`, "-o", "JobID,State"];
  const out = await command("sacct", query);
  const state = parseStates(id, out.code === 0 ? out.stdout : "").get(index);
  if (state) return state;
  const result = await readResult(entry);
  if (result !== null) return result.ok ? "COMPLETED" : "FAILED";
  return (await exists(logOf(entry))) ? "LOST" : "CANCELLED";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parse `JOBID_INDEX|STATE` lines (squeue `-o %i|%T`, sacct `-P -o JobID,State`).
 *
 * @param id The array job id.
 * @param text Command output.
 * @returns Array index → state (the first word: `CANCELLED by 0` is `CANCELLED`).
 * @example
 * ```ts
 * import { parseStates } from "./slurm.ts";
 * parseStates("7", "7_0|COMPLETED\n7_1|CANCELLED by 0\n").get(1); // "CANCELLED"
 * ```
 */
export function parseStates(id: string, text: string): Map<number, string> {
  const states = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [job, state] = line.trim().split("|");
    const match = job?.match(/^(\d+)_(\d+)$/);
    if (!match || match[1] !== id || !state) continue;
    states.set(Number(match[2]), state.split(/\s+/)[0].replace(/\+$/, ""));
  }
  return states;
}

async function readResult(entry: Entry): Promise<TaskResult | null> {
  try {
    const tasksFile = `${entry.job!.dir}/tasks.json`;
    return JSON.parse(await Deno.readTextFile(resultPath(tasksFile, entry.job!.index)));
  } catch {
    return null;
  }
}

async function command(
  name: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const out = await new Deno.Command(name, { args, stdout: "piped", stderr: "piped" }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (error) {
    return { code: 127, stdout: "", stderr: (error as Error).message };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
