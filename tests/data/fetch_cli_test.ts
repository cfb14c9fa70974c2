/** `deno task fetch-data`: usage errors are one line with exit 2 and no stack trace. */

import assert from "node:assert/strict";
import { makeTestDir } from "../_tmp.ts";

const DENO = Deno.execPath();

async function fetchData(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(DENO, {
    args: ["run", "-q", "-P=fetch", "data/fetch_cli.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("fetch-data names an unknown flag, an unknown dataset and an --out outside the project in one line, exit 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--bogus"],
      /^fetch-data: unknown flag --bogus; flags: --out DIR, --base-url URL, --json, --help$/,
    ],
    [["--out"], /^fetch-data: flag --out needs a value \(--out DIR\)$/],
    [["aime2"], /^fetch-data: unknown dataset "aime2"; registered: aime24, /],
    [
      ["aime24", "--out", "/tmp/sent-fetch", "--base-url", "http://127.0.0.1:9"],
      /^fetch-data: --out \/tmp\/sent-fetch is outside the folders fetch-data may write \(the project folder \/[^)]+\); choose a folder inside them$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const r = await fetchData(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err.trim(), pattern);
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
  }
});

Deno.test("fetch-data reports a failed download as one line per dataset, exit 1, no stack", async () => {
  const dir = await makeTestDir("fetch-cli");
  const r = await fetchData("aime24", "--out", dir, "--base-url", "http://127.0.0.1:9");
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /^aime24 +failed +/m);
  assert.doesNotMatch(r.out + r.err, /\s+at |run again with/);
});
