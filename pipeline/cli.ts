/**
 * The `sent` command line: `deno task sent <command> [flags]` (and the `reproduce`, `stage`,
 * `status`, `dag`, `gc`, `report`, `publish` tasks that forward to it).
 *
 * Commands and flags are two tables below; `--help` prints them. Exit codes: 0 success, 1 a
 * stage failed, 2 a usage or config error, or a command whose stages are not implemented yet.
 *
 * Progress and per-node lines go to stderr; results (summaries, status, dag) go to stdout.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConfigError, loadConfig, type ResolvedConfig } from "./config.ts";
import { configSchema } from "./config_schema.ts";
import { dagMermaid, dagText } from "./dag_view.ts";
import { ortVersion } from "./fingerprint.ts";
import { collectGarbage } from "./gc.ts";
import { buildGraph, type PipelineGraph, withAncestors } from "./graph.ts";
import {
  type LockFile,
  newRunId,
  type NodeOutcome,
  readLockFile,
  type RunRecord,
  writeLockFile,
  writeRunRecord,
} from "./records.ts";
import { runGraph } from "./runner.ts";
import { graphStatus } from "./staleness.ts";
import type { Device, Stage } from "./stage.ts";
import { ArtifactStore } from "./store.ts";
import { acquireStoreLock, describeHolder, type StoreLock } from "./store_lock.ts";

/** Options for {@link main}. */
export interface CliOptions {
  /** The stage registry (the default pipeline: `stages/mod.ts`). */
  stages: readonly Stage[];
  /** Project root. Default: the current directory. */
  root?: string;
  /** Where the stages come from, for messages. Default `stages/mod.ts`. */
  registryName?: string;
  /** Standard output sink. */
  stdout?: (text: string) => void;
  /** Standard error sink. */
  stderr?: (text: string) => void;
}

/** A flag: its parser type, the value it takes and what it does. */
interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  value?: string;
  doc: string;
}

/** Every flag. Which command accepts which is in {@link COMMANDS}. */
const FLAGS: Readonly<Record<string, FlagSpec>> = {
  preset: { type: "string", value: "NAME|FILE", doc: "config preset (default: tiny)" },
  set: {
    type: "string",
    multiple: true,
    value: "KEY=VALUE",
    doc: "override a config key, checked against its type (repeatable)",
  },
  device: {
    type: "string",
    value: "cpu|webgpu|cuda",
    doc: "execution provider (sets runtime.device)",
  },
  store: {
    type: "string",
    value: "DIR",
    doc: "artifact store (default: .sent/store); run records and sent.lock.json go beside it",
  },
  jobs: { type: "string", value: "N", doc: "independent nodes run at once (default: 1)" },
  "dry-run": {
    type: "boolean",
    doc: "show what would run (gc: what would be removed), change nothing",
  },
  verify: { type: "boolean", doc: "re-hash cached artifacts and recompute corrupted ones" },
  force: { type: "boolean", doc: "recompute the stage's nodes even when cached" },
  mermaid: { type: "boolean", doc: "print a Mermaid flowchart instead of a text tree" },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** What a command handler receives. */
interface Invocation {
  command: string;
  argv: string[];
  flags: Record<string, unknown>;
  positionals: string[];
  options: CliOptions;
  root: string;
  out: (text: string) => void;
  err: (text: string) => void;
}

/** A command: usage, summary, accepted flags and handler. */
interface CommandSpec {
  usage: string;
  doc: string;
  flags: readonly string[];
  positionals: number;
  run(inv: Invocation): Promise<number>;
}

const CONFIG_FLAGS = ["preset", "set", "device", "store"] as const;
const RUN_FLAGS = [...CONFIG_FLAGS, "jobs", "dry-run", "verify"] as const;

/** Every command. */
const COMMANDS: Readonly<Record<string, CommandSpec>> = {
  reproduce: {
    usage: "reproduce",
    doc: "run every node of the pipeline, taking cached artifacts from the store",
    flags: RUN_FLAGS,
    positionals: 0,
    run: (inv) => runPipeline(inv, null),
  },
  stage: {
    usage: "stage NAME",
    doc: "run one stage's nodes (and whatever they need)",
    flags: [...RUN_FLAGS, "force"],
    positionals: 1,
    run: (inv) => runPipeline(inv, inv.positionals[0]),
  },
  status: {
    usage: "status",
    doc: "cached / stale per node, with the reason (config key, source file, upstream)",
    flags: CONFIG_FLAGS,
    positionals: 0,
    run: showStatus,
  },
  dag: {
    usage: "dag",
    doc: "print the node graph as a text tree (or Mermaid with --mermaid)",
    flags: ["preset", "set", "device", "mermaid"],
    positionals: 0,
    run: showDag,
  },
  gc: {
    usage: "gc",
    doc: "delete artifacts not referenced by sent.lock.json or the 5 most recent runs",
    flags: ["store", "dry-run"],
    positionals: 0,
    run: runGc,
  },
  report: {
    usage: "report",
    doc: 'build the report (runs the "report" stage)',
    flags: RUN_FLAGS,
    positionals: 0,
    run: (inv) => runNamedStage(inv, "report"),
  },
  publish: {
    usage: "publish",
    doc: 'write the static report site (runs the "publish" stage)',
    flags: RUN_FLAGS,
    positionals: 0,
    run: (inv) => runNamedStage(inv, "publish"),
  },
  help: {
    usage: "help",
    doc: "show this help",
    flags: [],
    positionals: 0,
    run: (inv) => {
      inv.out(helpText());
      return Promise.resolve(0);
    },
  },
};

/** Exit codes. */
const EXIT = { ok: 0, stageFailed: 1, usage: 2 } as const;

/**
 * Run the CLI.
 *
 * @param argv Arguments after the script name, e.g. `["stage", "train", "--force"]`.
 * @param options The stage registry and output sinks.
 * @returns The exit code.
 * @example
 * ```ts ignore
 * import { main } from "./cli.ts";
 * import { stages } from "../stages/mod.ts";
 * Deno.exit(await main(Deno.args, { stages }));
 * ```
 */
export async function main(argv: string[], options: CliOptions): Promise<number> {
  const encoder = new TextEncoder();
  const out = options.stdout ??
    ((text: string) => Deno.stdout.writeSync(encoder.encode(text + "\n")));
  const err = options.stderr ??
    ((text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n")));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: FLAGS as Record<string, FlagSpec>,
    });
  } catch (error) {
    err(`sent: ${flagError(error as Error & { code?: string })}`);
    return EXIT.usage;
  }
  const [command, ...positionals] = parsed.positionals;
  if (command === undefined) {
    (parsed.values.help ? out : err)(helpText());
    return parsed.values.help ? EXIT.ok : EXIT.usage;
  }
  const spec = COMMANDS[command];
  if (spec === undefined) {
    err(`sent: unknown command "${command}"; valid commands: ${Object.keys(COMMANDS).join(", ")}`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    out(commandHelp(spec));
    return EXIT.ok;
  }
  for (const flag of Object.keys(parsed.values)) {
    if (!spec.flags.includes(flag)) {
      err(
        `sent ${command}: flag --${flag} does not apply here; valid flags for ${command}: ${
          listFlags(spec)
        }`,
      );
      return EXIT.usage;
    }
  }
  if (positionals.length !== spec.positionals) {
    const expected = spec.positionals === 0
      ? "no arguments"
      : `${spec.positionals} argument (${spec.usage})`;
    err(
      `sent ${command}: expected ${expected}, got ${
        positionals.length ? positionals.map((p) => `"${p}"`).join(" ") : "none"
      }`,
    );
    return EXIT.usage;
  }
  return await spec.run({
    command,
    argv,
    flags: parsed.values,
    positionals,
    options,
    root: options.root ?? Deno.cwd(),
    out,
    err,
  });
}

// ── commands ─────────────────────────────────────────────────────────────────────────────

/** A loaded pipeline: config, graph, store and state directory. */
interface Loaded {
  config: ResolvedConfig;
  graph: PipelineGraph;
  store: ArtifactStore;
  stateDir: string;
}

async function runPipeline(inv: Invocation, stageName: string | null): Promise<number> {
  const jobs = parseJobs(inv);
  if (jobs === null) return EXIT.usage;
  const loaded = await loadPipeline(inv, stageName);
  if (typeof loaded === "number") return loaded;
  const { config, graph, store, stateDir } = loaded;
  const targets = stageName === null
    ? graph.nodes
    : graph.nodes.filter((node) => node.stage.name === stageName);
  const selected = withAncestors(graph, targets);
  const force = new Set(inv.flags.force ? targets.map((node) => node.id) : []);
  const dryRun = Boolean(inv.flags["dry-run"]);
  const device = (config.values.runtime as { device: Device }).device;
  inv.err(
    `sent ${inv.command}${
      stageName && inv.command === "stage" ? ` ${stageName}` : ""
    }: ${selected.length} nodes · preset ${config.preset} · store ${store.root} · jobs ${jobs}${
      dryRun ? " · dry run" : ""
    }`,
  );
  const versions = await toolVersions(inv.root);
  const runId = newRunId();
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
      onStale: (holder, reason) =>
        inv.err(`took over a stale store lock of ${describeHolder(holder)}: ${reason}`),
    });
  }
  const removeSignalHandlers = lock ? releaseOnSignal(lock, inv) : () => {};
  try {
    const previous = await readLockFile(stateDir);
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
      lock: previous,
      versions,
    });
    const failed = outcomes.some((outcome) => outcome.state === "failed");
    const seconds = (performance.now() - t0) / 1000;
    if (!dryRun) {
      record.nodes = outcomes;
      record.status = failed ? "failed" : "ok";
      record.finishedAt = new Date().toISOString();
      await writeRunRecord(stateDir, record);
      await writeLockFile(
        stateDir,
        nextLockFile(previous, graph, outcomes, {
          runId,
          preset: config.preset,
          replaceAll: stageName === null && !failed,
        }),
      );
    }
    inv.out(summaryLine(outcomes, seconds, recordPath));
    return failed ? EXIT.stageFailed : EXIT.ok;
  } finally {
    removeSignalHandlers();
    await lock?.release();
  }
}

async function runNamedStage(inv: Invocation, name: string): Promise<number> {
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

async function showStatus(inv: Invocation): Promise<number> {
  const loaded = await loadPipeline(inv, null);
  if (typeof loaded === "number") return loaded;
  const lock = await readLockFile(loaded.stateDir);
  const statuses = await graphStatus(loaded.graph, loaded.store, lock);
  inv.out(
    lock
      ? `compared with ${loaded.stateDir}/sent.lock.json (run ${lock.run}, ${lock.updatedAt})`
      : `no sent.lock.json in ${loaded.stateDir} yet: nothing has run with this store`,
  );
  const width = Math.max(...statuses.map((status) => status.node.length));
  for (const status of statuses) {
    const detail = status.state === "cached" ? status.key.slice(0, 12) : status.reasons.join("; ");
    inv.out(`${status.state.padEnd(8)} ${status.node.padEnd(width)}  ${detail}`);
  }
  const counts = countBy(statuses.map((status) => status.state));
  inv.out(
    `${statuses.length} nodes: ${
      Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ")
    }`,
  );
  return EXIT.ok;
}

async function showDag(inv: Invocation): Promise<number> {
  const loaded = await loadPipeline(inv, null);
  if (typeof loaded === "number") return loaded;
  inv.out(inv.flags.mermaid ? dagMermaid(loaded.graph) : dagText(loaded.graph));
  return EXIT.ok;
}

async function runGc(inv: Invocation): Promise<number> {
  const { store, stateDir } = storeOf(inv);
  const dryRun = Boolean(inv.flags["dry-run"]);
  const lock = dryRun ? null : await acquireStoreLock(`${store.root}/.lock`, {
    command: "gc",
    onWait: (holder) => inv.err(`waiting for the store lock held by ${describeHolder(holder)}`),
  });
  try {
    const result = await collectGarbage(store, { stateDir, dryRun });
    for (const item of result.removed) {
      inv.out(`${dryRun ? "would remove" : "removed"} ${item.what} (${formatBytes(item.bytes)})`);
    }
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

// ── helpers ──────────────────────────────────────────────────────────────────────────────

async function loadPipeline(inv: Invocation, stageName: string | null): Promise<Loaded | number> {
  if (inv.options.stages.length === 0) return noStages(inv);
  if (stageName !== null && !inv.options.stages.some((stage) => stage.name === stageName)) {
    inv.err(
      `sent ${inv.command}: stage "${stageName}" is not implemented yet: no stage by that name is registered in ${
        registryName(inv)
      } (registered: ${inv.options.stages.map((stage) => stage.name).join(", ")})`,
    );
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
  return { config, graph, ...storeOf(inv) };
}

/**
 * On Ctrl-C or SIGTERM, release the store lock before exiting, so the next run need not wait
 * for it to go stale. Unfinished work stays in the store's .tmp/ (removed by the next run) and
 * in scratch directories (resumed by the next run).
 */
function releaseOnSignal(lock: StoreLock, inv: Invocation): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const handlers = signals.map((signal) => {
    const handler = () => {
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

function storeOf(inv: Invocation): { store: ArtifactStore; stateDir: string } {
  const given = (inv.flags.store as string | undefined) ?? ".sent/store";
  const absolute = given.startsWith("/") ? given : `${Deno.cwd()}/${given}`;
  const normalised = new URL(`file://${absolute}`).pathname.replace(/\/$/, "");
  return {
    store: new ArtifactStore(normalised),
    stateDir: normalised.replace(/\/[^/]+$/, "") || "/",
  };
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
  const record = recordPath ? ` · run record ${recordPath}` : "";
  return `${outcomes.length} nodes: ${parts.join(", ")} · ${seconds.toFixed(2)} s${record}`;
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

function flagError(error: Error & { code?: string }): string {
  const unknown = error.message.match(/Unknown option '([^']+)'/);
  if (unknown) {
    return `unknown flag "${unknown[1]}"; valid flags: ${
      Object.keys(FLAGS).map((f) => `--${f}`).join(", ")
    }`;
  }
  const missing = error.message.match(/Option '(--[a-z-]+)[^']*' argument missing/);
  if (missing) {
    return `flag ${missing[1]} needs a value (${missing[1]} ${
      FLAGS[missing[1].slice(2)]?.value ?? "VALUE"
    })`;
  }
  return error.message;
}

function listFlags(spec: CommandSpec): string {
  return spec.flags.length ? spec.flags.map((flag) => `--${flag}`).join(", ") : "none";
}

function flagLine(flag: string): string {
  const spec = FLAGS[flag];
  const head = `--${flag}${spec.value ? ` ${spec.value}` : ""}`;
  return `  ${head.padEnd(28)} ${spec.doc}`;
}

function commandHelp(spec: CommandSpec): string {
  return [
    `usage: deno task sent ${spec.usage} [flags]`,
    "",
    spec.doc,
    "",
    "flags:",
    ...spec.flags.map(flagLine),
  ].join("\n");
}

function helpText(): string {
  const commands = Object.values(COMMANDS).map((spec) => `  ${spec.usage.padEnd(28)} ${spec.doc}`);
  return [
    "usage: deno task sent <command> [flags]",
    "",
    "commands:",
    ...commands,
    "",
    "flags (each command accepts the ones that apply; see `sent <command> --help`):",
    ...Object.keys(FLAGS).map(flagLine),
    "",
    "exit codes: 0 ok · 1 a stage failed · 2 usage or config error, or not implemented yet",
  ].join("\n");
}

if (import.meta.main) {
  const { stages } = await import("../stages/mod.ts");
  Deno.exit(await main(Deno.args, { stages }));
}
