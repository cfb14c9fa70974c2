/**
 * CLI entry for tests: the real `main` of pipeline/cli.ts with the fixture stages (or the
 * stage registry named by SENT_FIXTURE_STAGES, e.g. a copy of the fixture a test edits).
 */

import { main } from "../../pipeline/cli.ts";

const registry = Deno.env.get("SENT_FIXTURE_STAGES") ??
  new URL("./fixture/mod.ts", import.meta.url).pathname;
const { stages } = await import(`file://${registry}`);
// SENT_FIXTURE_PLANNED=a,b: stage names to report as not implemented yet.
const planned = (Deno.env.get("SENT_FIXTURE_PLANNED") ?? "").split(",").filter((name) => name);
Deno.exit(await main(Deno.args, { stages, registryName: registry, planned }));
