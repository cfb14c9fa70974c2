/**
 * `deno task fetch-data [NAME…] [--out DIR] [--base-url URL] [--json]`
 *
 * Downloads registered datasets (all of them when no name is given) into `.sent/datasets/`,
 * verifies them, and prints one line per dataset. Exits 1 when any download failed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fetchDatasets } from "./fetch.ts";
import { REGISTRY } from "./registry.ts";

const USAGE = `usage: deno task fetch-data [NAME...] [--out DIR] [--base-url URL] [--json]
  NAME        registered datasets (default: all): ${REGISTRY.map((e) => e.name).join(", ")}
  --out       output folder (default .sent/datasets)
  --base-url  mirror serving <base-url>/<file> for every dataset (needed for the normalised JSONL files)
  --json      print the reports as JSON`;

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    out: { type: "string" },
    "base-url": { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const known = new Set(REGISTRY.map((e) => e.name));
const unknown = positionals.filter((n) => !known.has(n));
if (unknown.length > 0) {
  console.error(`unknown dataset ${unknown.map((n) => `"${n}"`).join(", ")}\n${USAGE}`);
  Deno.exit(2);
}
const names = positionals.length > 0 ? positionals : REGISTRY.map((e) => e.name);
const reports = await fetchDatasets(names, { outDir: values.out, baseUrl: values["base-url"] });
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
Deno.exit(reports.some((r) => r.status === "failed") ? 1 : 0);
