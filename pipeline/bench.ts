/**
 * Benchmark harness: `deno task bench [suite...] [--json] [--quick]`.
 *
 * A suite is a module exporting `run(opts: { quick: boolean }): Promise<BenchResult[]>`
 * (bench_types.ts). Suites are listed in {@link SUITES} and imported only when run; a suite whose
 * module does not exist yet is reported as such. With no suite named, every suite that exists
 * runs. Output per suite: `{ suite, machine, results }` — one JSON object per line with `--json`,
 * a table otherwise.
 *
 * @module
 */

import { cpus } from "node:os";
import { parseArgs } from "node:util";
import type { BenchResult } from "./bench_types.ts";
import { ortVersion } from "./fingerprint.ts";
import { WORKER_FLAGS } from "./flags.ts";

/** Suite name → module path (relative to this file). */
export const SUITES: Readonly<Record<string, string>> = {
  pipeline: "./bench_pipeline.ts",
  engine: "../kernels/bench_engine.ts",
  model: "../kernels/bench_model.ts",
  losses: "../kernels/bench_losses.ts",
  train: "../stages/bench_train.ts",
  scale: "./bench_scale.ts",
};

/** The machine a benchmark ran on. */
export interface Machine {
  /** CPU model name. */
  cpu: string;
  /** Logical cores. */
  cores: number;
  /** Total memory in GiB. */
  memoryGiB: number;
  /** OS and kernel release. */
  os: string;
  /** Deno version. */
  deno: string;
  /** onnxruntime-node version. */
  ort: string;
}

/** One suite's output. */
export interface SuiteReport {
  /** Suite name. */
  suite: string;
  /** Machine description. */
  machine: Machine;
  /** Measured figures. */
  results: BenchResult[];
}

/**
 * Describe this machine.
 *
 * @returns CPU, cores, memory, OS, Deno and ORT versions.
 */
export async function describeMachine(): Promise<Machine> {
  const list = cpus();
  return {
    cpu: list[0]?.model?.trim() || "unknown",
    cores: list.length || navigator.hardwareConcurrency,
    memoryGiB: Math.round((Deno.systemMemoryInfo().total / 2 ** 30) * 10) / 10,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    ort: await ortVersion(Deno.cwd()),
  };
}

/**
 * Run the harness.
 *
 * @param argv Suite names and flags.
 * @returns Exit code: 0, or 2 for a usage error or a named suite that does not exist yet.
 */
export async function benchMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { json: { type: "boolean" }, quick: { type: "boolean" }, help: { type: "boolean" } },
    });
  } catch (error) {
    console.error(
      `bench: ${(error as Error).message.split(".")[0]}; valid flags: --json, --quick, --help`,
    );
    return 2;
  }
  if (parsed.values.help) {
    console.log(`usage: deno task bench [${Object.keys(SUITES).join("|")} ...] [--json] [--quick]`);
    return 0;
  }
  const unknown = parsed.positionals.filter((name) => !Object.hasOwn(SUITES, name));
  if (unknown.length > 0) {
    console.error(
      `bench: unknown suite ${unknown.map((n) => `"${n}"`).join(", ")}; suites: ${
        Object.keys(SUITES).join(", ")
      }`,
    );
    return 2;
  }
  const named = parsed.positionals.length > 0;
  const names = named ? parsed.positionals : Object.keys(SUITES);
  if (names.length > 1) return await runEachInItsOwnProcess(names, argv);
  const machine = await describeMachine();
  let code = 0;
  for (const name of names) {
    const url = new URL(SUITES[name], import.meta.url);
    if (!(await exists(url))) {
      console.error(
        `bench: suite "${name}" is not implemented yet (${
          url.pathname.replace(`${Deno.cwd()}/`, "")
        } does not exist)`,
      );
      if (named) code = 2;
      continue;
    }
    const suite = await import(url.href) as {
      run(opts: { quick: boolean }): Promise<BenchResult[]>;
    };
    let results: BenchResult[];
    try {
      results = await suite.run({ quick: Boolean(parsed.values.quick) });
    } catch (error) {
      // A figure that cannot be measured fails the suite by name; it is never left out quietly.
      console.error(`bench ${name}: ${(error as Error).message}`);
      code = 1;
      continue;
    }
    const report: SuiteReport = { suite: name, machine, results };
    console.log(parsed.values.json ? JSON.stringify(report) : formatReport(report));
  }
  return code;
}

function formatReport(report: SuiteReport): string {
  const m = report.machine;
  const lines = [
    `suite ${report.suite} · ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB · ${m.os} · deno ${m.deno} · ort ${m.ort}`,
  ];
  for (const r of report.results) {
    const reference = r.reference === undefined ? "" : `  reference ${r.reference} ${r.unit}`;
    const ratio = r.ratio === undefined ? "" : `  ratio ${r.ratio}`;
    const target = r.target === undefined ? "" : `  target ${r.target}`;
    lines.push(
      `  ${r.name.padEnd(32)} ${
        String(r.value).padStart(10)
      } ${r.unit}${reference}${ratio}${target}`,
    );
  }
  return lines.join("\n");
}

/**
 * Several suites run one after another, each in a fresh process: ORT sessions, thread pools and
 * heap left by one suite must not slow the next (measured: a batch-256 decode step took 18.6 ms
 * after the engine suite in the same process, 13.3 ms alone).
 */
async function runEachInItsOwnProcess(names: readonly string[], argv: string[]): Promise<number> {
  const flags = argv.filter((a) => a.startsWith("--"));
  const script = new URL(import.meta.url).pathname;
  let code = 0;
  for (const name of names) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...WORKER_FLAGS, "--allow-run", script, name, ...flags],
      stdout: "inherit",
      stderr: "inherit",
    });
    const status = await child.output();
    if (status.code !== 0) code = status.code;
  }
  return code;
}

async function exists(url: URL): Promise<boolean> {
  try {
    await Deno.stat(url);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exit(await benchMain(Deno.args));
}
