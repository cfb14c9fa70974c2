/**
 * The registered benchmark files (aime24.jsonl, …) for the tests that read them: the project's
 * shared copies in `../shared/datasets` beside the checkout, else `.sent/datasets`, where
 * `deno task fetch-data` writes them. A fresh clone has neither: the tests that need the files
 * are then skipped, each saying why in its name, and every other test runs.
 */

import { REGISTRY } from "../data/registry.ts";

/** Folders that may hold the files, in order of preference. */
const CANDIDATES = ["../shared/datasets", ".sent/datasets"];

/** Why a test that needs the files is skipped. */
const SKIP_REASON = "skipped: no benchmark files in ../shared/datasets or .sent/datasets; " +
  "`deno task fetch-data --base-url URL` downloads them";

function holdsEveryJsonl(dir: string): boolean {
  return REGISTRY.filter((entry) => entry.format === "jsonl").every((entry) => {
    try {
      return Deno.statSync(`${dir}/${entry.file}`).isFile;
    } catch {
      return false;
    }
  });
}

/** The folder holding every registered JSONL benchmark, or `null` when none does. */
export const BENCHMARKS: string | null = CANDIDATES.find(holdsEveryJsonl) ?? null;

/**
 * Options for a test that reads the benchmark files: skipped, with the reason in its name, when
 * they are not here.
 *
 * @param name Test name.
 * @returns `{ name, ignore }` for `Deno.test(options, fn)`.
 */
export function needsBenchmarks(name: string): { name: string; ignore: boolean } {
  return BENCHMARKS === null ? { name: `${name} (${SKIP_REASON})`, ignore: true } : {
    name,
    ignore: false,
  };
}

/**
 * Options for a test that reads `../shared/datasets/README.md` (the table the registry's row
 * counts and sha256 were copied from), which only the project's shared folder has.
 *
 * @param name Test name.
 * @returns `{ name, ignore }` for `Deno.test(options, fn)`.
 */
export function needsSharedReadme(name: string): { name: string; ignore: boolean } {
  let present = false;
  try {
    present = Deno.statSync("../shared/datasets/README.md").isFile;
  } catch {
    // Not beside this checkout.
  }
  return present ? { name, ignore: false } : {
    name:
      `${name} (skipped: needs ../shared/datasets/README.md, the table of the normalised files)`,
    ignore: true,
  };
}
