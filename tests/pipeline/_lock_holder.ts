/**
 * Test helper: take the store lock at `Deno.args[0]`, write this process's pid to
 * `Deno.args[2]`, then block the JS thread for `Deno.args[1]` ms with no timers or I/O able to
 * run (as a long synchronous stretch of a stage does), write `<marker>.done` and release.
 */

import { acquireStoreLock } from "../../pipeline/store_lock.ts";

const [path, ms, marker] = Deno.args;
const lock = await acquireStoreLock(path, { command: "holder" });
await Deno.writeTextFile(marker, String(Deno.pid));
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms));
await Deno.writeTextFile(`${marker}.done`, new Date().toISOString());
await lock.release();
