/**
 * CLI entry of the `pipeline.cached_reproduce_s` benchmark: the real `main` with the 22-node
 * benchmark DAG.
 *
 * @module
 */

import { stages } from "./_bench_stages.ts";
import { main } from "./cli.ts";

Deno.exit(await main(Deno.args, { stages, registryName: "pipeline/_bench_stages.ts" }));
