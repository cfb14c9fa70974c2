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
import {
  EXIT,
  type Invocation,
  runGc,
  runNamedStage,
  runPipeline,
  runPublish,
  showDag,
  showStatus,
} from "./_commands.ts";
import { UsageError } from "./errors.ts";
import { explainDenied, permitsOf } from "./permits.ts";
import type { Stage } from "./stage.ts";
import { WORKER_COMMAND, workerMain } from "./worker.ts";

/** Options for {@link main}. */
export interface CliOptions {
  /** The stage registry (the default pipeline: `stages/mod.ts`). */
  stages: readonly Stage[];
  /** Project root. Default: the current directory. */
  root?: string;
  /** Where the stages come from, for messages. Default `stages/mod.ts`. */
  registryName?: string;
  /** Stages of the design that are not implemented yet; `reproduce` names them after a run. */
  planned?: readonly string[];
  /** Files a successful run points the user to, e.g. `results: PATH` (see {@link RunOutput}). */
  outputs?: readonly RunOutput[];
  /** Standard output sink. */
  stdout?: (text: string) => void;
  /** Standard error sink. */
  stderr?: (text: string) => void;
}

/** A file of one stage's artifact that a run ends by printing as `<label>: <path>`. */
export interface RunOutput {
  /** What the line starts with, e.g. `results`. */
  label: string;
  /** The stage whose artifact holds the file (a stage without fan-out). */
  stage: string;
  /** Path inside the artifact. */
  file: string;
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
    doc: "artifact store (default: .sent/store, whose sent.lock.json is at the project root); " +
      "run records and the lock file go beside it",
  },
  jobs: {
    type: "string",
    value: "N",
    doc: "independent nodes and shards run at once; N > 1 runs them in N worker processes, " +
      "each with 1/N of the thread budget (default: 1, in this process)",
  },
  "dry-run": {
    type: "boolean",
    doc: "show what would run (gc: what would be removed), change nothing",
  },
  verify: { type: "boolean", doc: "re-hash cached artifacts and recompute corrupted ones" },
  force: { type: "boolean", doc: "recompute the stage's nodes even when cached" },
  mermaid: { type: "boolean", doc: "print a Mermaid flowchart instead of a text tree" },
  out: { type: "string", value: "DIR", doc: "publish: the site folder (default: .sent/site)" },
  executor: {
    type: "string",
    value: "local|slurm",
    doc: "where nodes and shards run: local (default; see --jobs) or slurm (job arrays through " +
      "sbatch, options from the executor.* config keys; needs --allow-run=sbatch,squeue,sacct,scancel)",
  },
  help: { type: "boolean", short: "h", doc: "show this help" },
};

/** A command: usage, summary, accepted flags and handler. */
interface CommandSpec {
  usage: string;
  doc: string;
  flags: readonly string[];
  positionals: number;
  run(inv: Invocation): Promise<number>;
}

const CONFIG_FLAGS = ["preset", "set", "device", "store"] as const;
const RUN_FLAGS = [...CONFIG_FLAGS, "jobs", "dry-run", "verify", "executor"] as const;

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
    doc: "delete artifacts not referenced by sent.lock.json or the 5 latest successful runs",
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
    doc: "write a static site of the store's runs: an index and one report page per run",
    flags: ["store", "out"],
    positionals: 0,
    run: runPublish,
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
  // A worker process of a run (--jobs N, or a SLURM array task): not a user command.
  if (argv[0] === WORKER_COMMAND) return await workerMain(argv.slice(1), options.stages);
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
  try {
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
  } catch (error) {
    const message = usageMessage(error);
    if (message === null) throw error;
    err(`sent ${command}: ${message}`);
    return EXIT.usage;
  }
}

/**
 * The one line for an error that is the user's to fix, or `null` for a bug: usage errors, and
 * reads or writes that the permission set or the OS refused.
 */
function usageMessage(error: unknown): string | null {
  if (error instanceof UsageError) return error.message;
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return explainDenied(error.message, permitsOf("pipeline"));
  }
  return null;
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
  const { stages, PLANNED_STAGES, RUN_OUTPUTS } = await import("../stages/mod.ts");
  Deno.exit(await main(Deno.args, { stages, planned: PLANNED_STAGES, outputs: RUN_OUTPUTS }));
}
