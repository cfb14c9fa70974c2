/** CLI entry for tests: the real `main` of pipeline/cli.ts with an empty stage registry. */

import { main } from "../../pipeline/cli.ts";

Deno.exit(await main(Deno.args, { stages: [], registryName: "tests/pipeline/_empty_cli.ts" }));
