/**
 * A user's first command on a fresh copy of the project prints the pipeline's output and nothing
 * of Deno's own: no "Initialize …" lines for the npm packages, no "Ignored build scripts" box, no
 * "experimental feature" warning about permissions in deno.json.
 */

import assert from "node:assert/strict";
import { makeTestDir } from "../_tmp.ts";
import { ROOT } from "./_harness.ts";

/** Copy the project's sources (not node_modules, .sent or .git) into a folder. */
async function copyProject(from: string, to: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    if ([".git", ".sent", "node_modules"].includes(entry.name)) continue;
    const [src, dst] = [`${from}/${entry.name}`, `${to}/${entry.name}`];
    if (entry.isDirectory) {
      await Deno.mkdir(dst);
      await copyProject(src, dst);
    } else if (entry.isFile) {
      await Deno.copyFile(src, dst);
    }
  }
}

Deno.test("deno task on a fresh copy prints only the pipeline's output: no Initialize lines, build-scripts box or experimental warning", async () => {
  const dir = `${await makeTestDir("quiet")}/project`;
  await Deno.mkdir(dir);
  await copyProject(ROOT, dir);
  for (const task of ["dag", "dag"]) { // the first run installs node_modules, the second does not
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", task],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stdout, /\d+ nodes in \d+ stages?/);
    // Deno names the task it runs ("Task dag …"); nothing else of Deno's may appear.
    const foreign = stderr.split("\n").filter((line) => line !== "" && !line.startsWith("Task "));
    assert.deepEqual(foreign, [], stderr);
  }
});
