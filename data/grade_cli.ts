/**
 * `deno task grade PRED GOLD [--rel-tol X]` prints `true` or `false`: whether the predicted final
 * answer is mathematically equivalent to the gold one.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { mathEqual } from "./grade/mod.ts";

const USAGE = "usage: deno task grade PRED GOLD [--rel-tol X]   (prints true or false)";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { "rel-tol": { type: "string" }, help: { type: "boolean", short: "h", default: false } },
});
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
if (positionals.length !== 2) {
  console.error(`expected 2 arguments (PRED GOLD), got ${positionals.length}\n${USAGE}`);
  Deno.exit(2);
}
const relTol = values["rel-tol"] === undefined ? undefined : Number(values["rel-tol"]);
if (relTol !== undefined && !(relTol >= 0)) {
  console.error(`--rel-tol must be a non-negative number, got "${values["rel-tol"]}"`);
  Deno.exit(2);
}
console.log(String(mathEqual(positionals[0], positionals[1], { relTol })));
