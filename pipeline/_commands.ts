/**
 * The handlers behind the CLI's commands (cli.ts holds the command and flag tables): run the
 * pipeline or one stage under the store lock, show status and the DAG, collect garbage.
 *
 * @module
 */

import { ConfigError, getPath, loadConfig, type ResolvedConfig } from "./config.ts";
import { UsageError } from "./errors.ts";
import { configSchema } from "./config_schema.ts";
import { dagMermaid, dagText } from "./dag_view.ts";
import { estimateLines } from "./estimate.ts";
import { checkDevice } from "./device.ts";
import { ortVersion } from "./fingerprint.ts";
import { collectGarbage } from "./gc.ts";
import { buildGraph, type PipelineGraph, withAncestors } from "./graph.ts";
import {
  type LockFile,
  newRunId,
  type NodeOutcome,
  readLockFile,
  type RunRecord,
  type StatePaths,
  statePaths,
  writeLockFile,
  writeRunRecord,
} from "./records.ts";
import { runGraph } from "./runner.ts";
import type { Executor } from "./executor.ts";
import { SLURM_COMMANDS, type SlurmConfig, slurmExecutor } from "./slurm.ts";
import type { TaskEnv } from "./task.ts";
import type { WorkerSession } from "./worker.ts";
import { workerDeno, workerPool } from "./workers.ts";
import { pathProblem, permitsOf, resolve } from "./permits.ts";
import { graphStatus } from "./staleness.ts";
import type { CliOptions } from "./cli.ts";
import type { Device } from "./stage.ts";
import { ArtifactStore, openStore, type StoreUse } from "./store.ts";
import { acquireStoreLock, describeHolder, type LockHolder, type StoreLock } from "./store_lock.ts";

/** What a command handler receives. */
export interface Invocation {
  /** Command name. */
  command: string;
  /** The whole argument list (for the run record). */
  argv: string[];
  /** Parsed flag values. */
  flags: Record<string, unknown>;
  /** Arguments after the command. */
  positionals: string[];
  /** Stage registry and sinks given to `main`. */
  options: CliOptions;
  /** Project root. */
  root: string;
  /** Result lines (stdout). */
  out: (text: string) => void;
  /** Progress and error lines (stderr). */
  err: (text: string) => void;
}

/** Exit codes: 0 ok, 1 a stage failed, 2 usage/config error or not implemented yet. */
export const EXIT = { ok: 0, stageFailed: 1, usage: 2 } as const;

/** A loaded pipeline: config, graph, store, and where its run records and lock file live. */
interface Loaded {
  config: ResolvedConfig;
  graph: PipelineGraph;
  store: ArtifactStore;
  paths: StatePaths;
}

/**
 * `reproduce` (stageName null) or `stage NAME`: run the selected nodes and their ancestors under
 * the store lock; write the run record and the lock file.
 * @param inv The invocation.
 * @param stageName Stage to run, or null for every node.
 * @returns Exit code.
 */
export async function runPipeline(inv: Invocation, stageName: string | null): Promise<number> {
  const jobs = parseJobs(inv);
  if (jobs === null) return EXIT.usage;
  const where = (inv.flags.executor as string | undefined) ?? "local";
  if (!Object.hasOwn(EXECUTORS, where)) {
    inv.err(
      `sent ${inv.command}: --executor ${where}: expected one of ${
        Object.keys(EXECUTORS).join(", ")
      }`,
    );
    return EXIT.usage;
  }
  const dryRun = Boolean(inv.flags["dry-run"]);
  const loaded = await loadPipeline(inv, stageName, dryRun ? "read" : "write");
  if (typeof loaded === "number") return loaded;
  const { config, graph, store, paths } = loaded;
  const { stateDir, lockFile } = paths;
  const targets = stageName === null
    ? graph.nodes
    : graph.nodes.filter((node) => node.stage.name === stageName);
  const selected = withAncestors(graph, targets);
  const force = new Set(inv.flags.force ? targets.map((node) => node.id) : []);
  await readLockFile(lockFile); // a damaged lock file stops the run before anything happens
  const device = (config.values.runtime as { device: Device }).device;
  const versions = await toolVersions(inv.root);
  const runId = newRunId();
  const threads = (config.values.runtime as { threads: number }).threads ||
    navigator.hardwareConcurrency;
  // Checked before the lock is taken: a missing permission or command is a usage error.
  const executor = dryRun ? null : await EXECUTORS[where]({
    inv,
    jobs,
    threads,
    config,
    session: {
      root: inv.root,
      store: store.root,
      ...(inv.flags.preset === undefined ? {} : { preset: inv.flags.preset as string }),
      sets: (inv.flags.set as string[] | undefined) ?? [],
      ...(inv.flags.device === undefined ? {} : { device: inv.flags.device as string }),
      runId,
      versions,
    },
    dir: `${stateDir}/slurm/${runId}`,
    width: Math.max(
      0,
      ...selected.flatMap((n) => [n.id, ...n.shards.map((s) => s.id)]).map((id) => id.length),
    ),
  });
  const shardCount = selected.reduce((sum, node) => sum + node.shards.length, 0);
  inv.err(
    `sent ${inv.command}${
      stageName && inv.command === "stage" ? ` ${stageName}` : ""
    }: ${selected.length} nodes${
      shardCount > 0 ? ` (${shardCount} shards)` : ""
    } · preset ${config.preset} · store ${store.root} · ${
      where === "local" ? `jobs ${jobs}` : `executor ${where}`
    }${dryRun ? " · dry run" : ""}`,
  );
  const startedAt = new Date().toISOString();
  const t0 = performance.now();

  let lock: StoreLock | null = null;
  if (!dryRun) {
    lock = await acquireStoreLock(`${store.root}/.lock`, {
      command: [inv.command, ...inv.positionals].join(" "),
      onWait: (holder) =>
        inv.err(
          `waiting for the store lock held by ${
            describeHolder(holder)
          }; it is released when that run ends`,
        ),
      onAbandoned: (holder) => inv.err(abandonedLock(holder)),
    });
  }
  let active: Executor | null = null;
  const removeSignalHandlers = lock ? releaseOnSignal(lock, inv, () => active?.abort()) : () => {};
  try {
    const previous = await readLockFile(lockFile);
    let recordPath = "";
    const record: RunRecord = {
      id: runId,
      argv: inv.argv,
      preset: config.preset,
      overrides: config.overrides,
      startedAt,
      finishedAt: "",
      status: "running",
      nodes: selected.map((node) => ({
        node: node.id,
        stage: node.stage.name,
        key: node.key,
        state: "planned",
        reason: "",
        seconds: 0,
      })),
      versions,
    };
    if (!dryRun) {
      const removed = await store.cleanLeftovers();
      if (removed > 0) {
        inv.err(
          `removed ${removed} unfinished artifact${
            removed === 1 ? "" : "s"
          } left by an interrupted run`,
        );
      }
      recordPath = await writeRunRecord(stateDir, record);
    }
    const outcomes = await runGraph(selected, {
      store,
      runId,
      jobs,
      verify: Boolean(inv.flags.verify),
      dryRun,
      force,
      device,
      threads,
      lock: previous,
      versions,
      ...(executor ? { executor: (env: TaskEnv) => (active = executor(env)) } : {}),
    });
    const failed = outcomes.some((outcome) => outcome.state === "failed");
    const seconds = (performance.now() - t0) / 1000;
    if (!dryRun) {
      record.nodes = outcomes;
      record.status = failed ? "failed" : "ok";
      record.finishedAt = new Date().toISOString();
      await writeRunRecord(stateDir, record);
      await writeLockFile(
        lockFile,
        nextLockFile(previous, graph, outcomes, {
          runId,
          preset: config.preset,
          replaceAll: stageName === null && !failed,
        }),
      );
    }
    if (dryRun) {
      // What the planned nodes would cost, from each stage's estimate hook.
      const toRun = new Set(outcomes.filter((o) => o.state === "planned").map((o) => o.node));
      const nodes = selected.filter((node) => toRun.has(node.id));
      for (const line of estimateLines(nodes, config.values)) inv.out(line);
    }
    inv.out(summaryLine(outcomes, seconds, recordPath));
    if (!failed && !dryRun) {
      for (const output of inv.options.outputs ?? []) {
        const node = selected.find((n) => n.stage.name === output.stage);
        if (node) {
          inv.out(`${output.label}: ${store.artifactDir(output.stage, node.key)}/${output.file}`);
        }
      }
    }
    const planned = inv.options.planned ?? [];
    if (stageName === null && planned.length > 0 && !failed) {
      inv.out(`not implemented yet (the pipeline stops here): ${planned.join(", ")}`);
    }
    return failed ? EXIT.stageFailed : EXIT.ok;
  } finally {
    removeSignalHandlers();
    await lock?.release();
  }
}

/**
 * `report`: run the stage of that name, or say it is not implemented yet.
 * @param inv The invocation.
 * @param name Stage the command runs.
 * @returns Exit code.
 */
export async function runNamedStage(inv: Invocation, name: string): Promise<number> {
  if (!inv.options.stages.some((stage) => stage.name === name)) {
    if (inv.options.stages.length === 0) return noStages(inv);
    inv.err(
      `sent ${inv.command}: not implemented yet: it runs the "${name}" stage, which is not registered in ${
        registryName(inv)
      } (registered: ${
        inv.options.stages.map((stage) => stage.name).join(", ")
      }); it comes in a later issue`,
    );
    return EXIT.usage;
  }
  return await runPipeline(inv, name);
}

/** Where `publish` writes the site without `--out`. */
export const DEFAULT_SITE = ".sent/site";

/**
 * `publish`: a static site of the store's runs (an index and each run's report page, see
 * reports/publish.ts) in `--out` (default {@link DEFAULT_SITE}); it reads the run records, the
 * store and the lock file, and runs no stage. The pages are the `report` stage's reports, so a
 * registry without that stage has nothing to publish.
 * @param inv The invocation.
 * @returns Exit code.
 */
export async function runPublish(inv: Invocation): Promise<number> {
  if (!inv.options.stages.some((stage) => stage.name === "report")) {
    if (inv.options.stages.length === 0) return noStages(inv);
    inv.err(
      `sent publish: not implemented yet: it publishes the pages of the "report" stage, which is not registered in ${
        registryName(inv)
      } (registered: ${inv.options.stages.map((stage) => stage.name).join(", ")})`,
    );
    return EXIT.usage;
  }
  const paths = storePaths(inv);
  const out = resolve(inv.root, (inv.flags.out as string | undefined) ?? DEFAULT_SITE);
  const outside = await pathProblem(out, "write", permitsOf("pipeline"));
  if (outside !== null) {
    throw new UsageError(`--out ${out} ${outside.phrase}; choose a folder inside them`);
  }
  const store = await openStore(paths.store, "read", permitsOf("pipeline"));
  const { publishSite } = await import("../reports/publish.ts");
  const site = await publishSite({
    store,
    stateDir: paths.stateDir,
    lockFile: paths.lockFile,
    root: inv.root,
    out,
    log: inv.err,
  });
  inv.out(`${site.runs} run${site.runs === 1 ? "" : "s"} published`);
  inv.out(`site: ${site.index}`);
  return EXIT.ok;
}

/**
 * `status`: cached / stale / new / missing per node, with reasons.
 * @param inv The invocation.
 * @returns Exit code.
 */
export async function showStatus(inv: Invocation): Promise<number> {
  const loaded = await loadPipeline(inv, null, "read");
  if (typeof loaded === "number") return loaded;
  const { lockFile } = loaded.paths;
  const lock = await readLockFile(lockFile);
  const statuses = await graphStatus(loaded.graph, loaded.store, lock);
  inv.out(
    lock
      ? `compared with ${lockFile} (run ${lock.run}, ${lock.updatedAt})`
      : `no sent.lock.json yet (${lockFile}): nothing has run with this store`,
  );
  const width = Math.max(...statuses.map((status) => status.node.length));
  for (const status of statuses) {
    const detail = status.state === "cached" ? status.key.slice(0, 12) : status.reasons.join("; ");
    const shards = status.shards ?? [];
    const stored = shards.filter((shard) => shard.cached).length;
    const count = shards.length > 0 ? `; ${stored} of ${shards.length} shards in the store` : "";
    inv.out(`${status.state.padEnd(8)} ${status.node.padEnd(width)}  ${detail}${count}`);
    // Shards, indented under their node: a rerun runs only those not in the store.
    for (const shard of shards) {
      const state = shard.cached ? "cached" : "to run";
      inv.out(`  ${state.padEnd(6)} ${shard.shard.padEnd(width)}  ${shard.key.slice(0, 12)}`);
    }
  }
  const counts = countBy(statuses.map((status) => status.state));
  inv.out(
    `${statuses.length} nodes: ${
      Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ")
    }`,
  );
  return EXIT.ok;
}

/**
 * `dag`: the node graph as a text tree or Mermaid.
 * @param inv The invocation.
 * @returns Exit code.
 */
export async function showDag(inv: Invocation): Promise<number> {
  const loaded = await loadPipeline(inv, null, null);
  if (typeof loaded === "number") return loaded;
  inv.out(inv.flags.mermaid ? dagMermaid(loaded.graph) : dagText(loaded.graph));
  return EXIT.ok;
}

/**
 * `gc`: remove unreferenced artifacts under the store lock (`--dry-run` only lists them).
 * @param inv The invocation.
 * @returns Exit code.
 */
export async function runGc(inv: Invocation): Promise<number> {
  const { store: root, stateDir, lockFile } = storePaths(inv);
  const store = await openStore(root, "collect", permitsOf("pipeline"));
  const dryRun = Boolean(inv.flags["dry-run"]);
  const lock = dryRun ? null : await acquireStoreLock(`${store.root}/.lock`, {
    command: "gc",
    onWait: (holder) => inv.err(`waiting for the store lock held by ${describeHolder(holder)}`),
    onAbandoned: (holder) => inv.err(abandonedLock(holder)),
  });
  try {
    const result = await collectGarbage(store, { stateDir, lockFile, dryRun });
    for (const item of result.removed) {
      inv.out(`${dryRun ? "would remove" : "removed"} ${item.what} (${formatBytes(item.bytes)})`);
    }
    for (const stray of result.strays) inv.out(`left alone (not an artifact): ${stray}`);
    const total = result.removed.reduce((sum, item) => sum + item.bytes, 0);
    inv.out(
      `${dryRun ? "would free" : "freed"} ${
        formatBytes(total)
      }; kept ${result.kept} referenced artifacts`,
    );
    return EXIT.ok;
  } finally {
    await lock?.release();
  }
}

// ── executors ────────────────────────────────────────────────────────────────────────────

/** What choosing an executor needs. */
interface ExecutorChoice {
  inv: Invocation;
  jobs: number;
  threads: number;
  config: ResolvedConfig;
  session: WorkerSession;
  /** Folder of this run's SLURM submissions. */
  dir: string;
  /** Width of the node column of status lines. */
  width: number;
}

/** Makes a run's executor from its task environment; undefined: the runner's default. */
type ExecutorFactory = ((env: TaskEnv) => Executor) | undefined;

/**
 * `--executor` value → what it runs on. Each checks what it needs (permissions, commands) before
 * the run takes the store lock and throws a {@link UsageError} naming what is missing.
 */
const EXECUTORS: Readonly<Record<string, (choice: ExecutorChoice) => Promise<ExecutorFactory>>> = {
  async local({ inv, jobs, threads, session }) {
    // --jobs 1 runs every task in this process, with the whole thread budget.
    if (jobs === 1) return undefined;
    const deno = await workerDeno();
    if (deno === null) {
      throw new UsageError(
        `--jobs ${jobs} runs nodes in ${jobs} worker processes of Deno, and starting deno is not ` +
          "permitted here; the pipeline permission set allows it (run: deno), or give --allow-run=deno",
      );
    }
    // Each worker gets its share of the budget, at least one thread.
    const perWorker = Math.max(1, Math.floor(threads / jobs));
    return () =>
      workerPool({
        size: jobs,
        threads: perWorker,
        session,
        deno,
        script: entryScript(),
        write: inv.err,
      });
  },
  async slurm({ inv, config, session, dir, width }) {
    for (const name of SLURM_COMMANDS) {
      if ((await Deno.permissions.query({ name: "run", command: name })).state !== "granted") {
        throw new UsageError(
          `--executor slurm starts ${SLURM_COMMANDS.join(", ")}, and starting ${name} is not ` +
            `permitted; run the CLI with --allow-run=${SLURM_COMMANDS.join(",")} ` +
            "(see the README's section on clusters)",
        );
      }
    }
    try {
      await new Deno.Command("sbatch", { args: ["--version"], stdout: "null", stderr: "null" })
        .output();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new UsageError(
        "--executor slurm needs SLURM's client commands, and sbatch is not on PATH " +
          "(Debian: apt-get install slurm-client)",
      );
    }
    const slurm = getPath(config.values, "executor") as SlurmConfig;
    return () =>
      slurmExecutor({
        config: slurm,
        session,
        deno: Deno.execPath(),
        script: entryScript(),
        dir,
        write: inv.err,
        width,
        activeFile: `${dir.replace(/\/[^/]+$/, "")}/active.json`,
      });
  },
};

/** The script this process runs (workers start through it, so they find the same stages). */
function entryScript(): string {
  return decodeURIComponent(new URL(Deno.mainModule).pathname);
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────

async function loadPipeline(
  inv: Invocation,
  stageName: string | null,
  use: StoreUse | null,
): Promise<Loaded | number> {
  if (inv.options.stages.length === 0) return noStages(inv);
  if (stageName !== null && !inv.options.stages.some((stage) => stage.name === stageName)) {
    inv.err(`sent ${inv.command}: ${unknownStage(inv, stageName)}`);
    return EXIT.usage;
  }
  const device = inv.flags.device as string | undefined;
  const devices = configSchema().get("runtime.device")?.values ?? [];
  if (device !== undefined && !devices.includes(device)) {
    inv.err(`sent ${inv.command}: --device ${device}: expected one of ${devices.join(", ")}`);
    return EXIT.usage;
  }
  let config: ResolvedConfig;
  try {
    config = await loadConfig({
      preset: inv.flags.preset as string | undefined,
      sets: (inv.flags.set as string[] | undefined) ?? [],
      device,
    });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    inv.err(
      `sent ${inv.command}: invalid config:\n${error.problems.map((p) => `  ${p}`).join("\n")}`,
    );
    return EXIT.usage;
  }
  let graph: PipelineGraph;
  try {
    graph = await buildGraph(inv.options.stages, config, { root: inv.root });
  } catch (error) {
    inv.err(`sent ${inv.command}: cannot build the pipeline: ${(error as Error).message}`);
    return EXIT.usage;
  }
  // A run checks its device and its paths before it touches the store or runs a stage; a dry
  // run only plans.
  if (use === "write") {
    await checkDevice((config.values.runtime as { device: Device }).device);
    await checkConfigPaths(config, inv.root);
  }
  const paths = storePaths(inv);
  // `dag` reads no artifacts: it does not look at the store at all.
  const store = use === null
    ? new ArtifactStore(paths.store)
    : await openStore(paths.store, use, permitsOf("pipeline"));
  return { config, graph, store, paths };
}

function abandonedLock(holder: LockHolder | null): string {
  return `the store lock was last taken by ${
    describeHolder(holder)
  }, which ended without releasing it (killed?); its unfinished work is cleaned up`;
}

/**
 * On Ctrl-C or SIGTERM, stop the executor's workers (SLURM jobs are cancelled), say so and
 * release the store lock before exiting (the kernel would drop it anyway; releasing also clears
 * the holder's name from the lock file). Unfinished work stays
 * in the store's .tmp/ (removed by the next run) and in scratch directories (resumed by the next
 * run).
 */
function releaseOnSignal(lock: StoreLock, inv: Invocation, abort: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
      abort(); // worker processes, SLURM jobs
      lock.releaseSync();
      inv.err(`sent ${inv.command}: interrupted (${signal}); store lock released`);
      Deno.exit(signal === "SIGINT" ? 130 : 143);
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  return () =>
    handlers.forEach(({ signal, handler }) => Deno.removeSignalListener(signal, handler));
}

/** The store named by `--store`, its state directory and its lock file. */
function storePaths(inv: Invocation): StatePaths {
  return statePaths(inv.root, inv.flags.store as string | undefined);
}

/**
 * Every config key that names a path (`path` in its spec) must resolve, symlinks followed,
 * inside the folders the pipeline may read or write.
 */
async function checkConfigPaths(config: ResolvedConfig, root: string): Promise<void> {
  const permits = permitsOf("pipeline");
  for (const [key, spec] of configSchema()) {
    const value = getPath(config.values, key);
    if (spec.path === undefined || typeof value !== "string" || value === "") continue;
    const problem = await pathProblem(resolve(root, value), spec.path, permits, { below: true });
    if (problem === null) continue;
    const sep = problem.where === "self" ? " " : ": ";
    throw new UsageError(`config key ${key} = ${value}${sep}${problem.phrase}`);
  }
}

/** Why a stage name cannot run: planned but not written yet, or not a stage at all. */
function unknownStage(inv: Invocation, name: string): string {
  const registered = inv.options.stages.map((stage) => stage.name);
  const planned = inv.options.planned ?? [];
  if (planned.includes(name)) {
    return `stage "${name}" is not implemented yet (registered: ${registered.join(", ")})`;
  }
  const nearest = [...registered, ...planned]
    .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
    .filter(({ distance }) => distance <= Math.max(1, Math.floor(name.length / 3)))
    .sort((a, b) => a.distance - b.distance)[0];
  const hint = nearest ? ` (did you mean "${nearest.candidate}"?)` : "";
  const later = planned.length > 0 ? `; not implemented yet: ${planned.join(", ")}` : "";
  return `unknown stage "${name}"${hint}; stages: ${registered.join(", ")}${later}`;
}

/** Levenshtein distance, with a swap of neighbours counted as one edit ("trian" → "train"). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

function noStages(inv: Invocation): number {
  inv.err(
    `sent ${inv.command}: not implemented yet: no stages are registered (${
      registryName(inv)
    } exports an empty list); the real stages come from later issues`,
  );
  return EXIT.usage;
}

function registryName(inv: Invocation): string {
  return inv.options.registryName ?? "stages/mod.ts";
}

function parseJobs(inv: Invocation): number | null {
  const raw = inv.flags.jobs as string | undefined;
  if (raw === undefined) return 1;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    inv.err(`sent ${inv.command}: --jobs ${raw}: expected a positive integer`);
    return null;
  }
  return Number(raw);
}

function nextLockFile(
  previous: LockFile | null,
  graph: PipelineGraph,
  outcomes: readonly NodeOutcome[],
  options: { runId: string; preset: string; replaceAll: boolean },
): LockFile {
  const nodes = options.replaceAll ? {} : { ...(previous?.nodes ?? {}) };
  for (const outcome of outcomes) {
    if (!["cached", "ran", "recomputed"].includes(outcome.state)) continue;
    const node = graph.byId.get(outcome.node)!;
    nodes[node.id] = { stage: node.stage.name, key: node.key, inputs: node.inputs };
  }
  return {
    format: 1,
    run: options.runId,
    updatedAt: new Date().toISOString(),
    preset: options.preset,
    nodes,
  };
}

function summaryLine(
  outcomes: readonly NodeOutcome[],
  seconds: number,
  recordPath: string,
): string {
  const counts = countBy(outcomes.map((outcome) => outcome.state));
  const parts = Object.entries(counts).map(([state, n]) => `${n} ${state}`);
  const shards = outcomes.flatMap((outcome) => outcome.shards ?? []);
  const shardParts = Object.entries(countBy(shards.map((shard) => shard.state)))
    .map(([state, n]) => `${n} ${state}`);
  const shardText = shards.length > 0 ? ` · ${shards.length} shards: ${shardParts.join(", ")}` : "";
  const record = recordPath ? ` · run record ${recordPath}` : "";
  return `${outcomes.length} nodes: ${parts.join(", ")}${shardText} · ${
    seconds.toFixed(2)
  } s${record}`;
}

async function toolVersions(root: string): Promise<Record<string, string>> {
  return {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    onnxruntime: await ortVersion(root),
    os: `${Deno.build.os}-${Deno.build.arch}`,
  };
}

function countBy(items: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
