/**
 * `deno task fetch-data [NAME…] [--out DIR] [--base-url URL] [--json]`
 *
 * Downloads registered datasets (all of them when no name is given) into `.sent/datasets/`,
 * verifies them, and prints one line per dataset. Exits 1 when any download failed, 2 on a
 * usage error (unknown flag or dataset, an `--out` folder it may not write), which is one line.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { argsErrorMessage } from "../pipeline/errors.ts";
import { explainDenied, pathProblem, permitsOf, resolve } from "../pipeline/permits.ts";
import { fetchDatasets } from "./fetch.ts";
import { DEFAULT_DATA_DIR } from "./load_dataset.ts";
import { REGISTRY } from "./registry.ts";

const USAGE = `usage: deno task fetch-data [NAME...] [--out DIR] [--base-url URL] [--json]
  NAME        registered datasets (default: all): ${REGISTRY.map((e) => e.name).join(", ")}
  --out       output folder (default .sent/datasets)
  --base-url  mirror serving <base-url>/<file> for every dataset (needed for the normalised JSONL files)
  --json      print the reports as JSON`;

/** Flag → the value it takes (null: a switch), in the order the messages list them. */
const FLAGS: Readonly<Record<string, string | null>> = {
  out: "DIR",
  "base-url": "URL",
  json: null,
  help: null,
};

/** What fetch-data may touch (deno.json permission set "fetch"). */
const PERMITS = permitsOf("fetch");

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        out: { type: "string" },
        "base-url": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    return usage(argsErrorMessage(error as Error, FLAGS));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const known = new Set(REGISTRY.map((e) => e.name));
  const unknown = positionals.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    return usage(
      `unknown dataset ${unknown.map((n) => `"${n}"`).join(", ")}; registered: ${
        [...known].join(", ")
      }`,
    );
  }
  // At the real path: a symlink inside the project must not lead the download out of it.
  const out = values.out ?? DEFAULT_DATA_DIR;
  const outside = await pathProblem(resolve(PERMITS.root, out), "write", PERMITS);
  if (outside !== null) return usage(`--out ${out} ${outside.phrase}; choose a folder inside them`);
  const names = positionals.length > 0 ? positionals : REGISTRY.map((e) => e.name);
  const reports = await fetchDatasets(names, { outDir: values.out, baseUrl: values["base-url"] });
  for (const report of reports) report.message = explainDenied(report.message, PERMITS);
  if (values.json) {
    console.log(JSON.stringify(reports, null, 2));
  } else {
    for (const r of reports) {
      const detail = r.status === "ok"
        ? `${r.path}: ${r.message}; ${r.checks.join("; ")}`
        : r.message;
      console.log(`${r.name.padEnd(24)} ${r.status.padEnd(7)} ${detail}`);
    }
    const count = (s: string) => reports.filter((r) => r.status === s).length;
    console.log(`${count("ok")} ok, ${count("skipped")} skipped, ${count("failed")} failed`);
  }
  return reports.some((r) => r.status === "failed") ? 1 : 0;
}

function usage(message: string): number {
  console.error(`fetch-data: ${message}`);
  return 2;
}

Deno.exit(await main(Deno.args));
