/** createProgress(): a bar with ETA on a terminal, sparse plain lines otherwise. */

import assert from "node:assert/strict";
import { createProgress, formatSeconds } from "../../pipeline/progress.ts";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

Deno.test("createProgress() draws a bar with count, percentage and ETA on a terminal", () => {
  const out: string[] = [];
  const time = clock();
  const bar = createProgress(10, {
    label: "steps",
    tty: true,
    write: (s) => out.push(s),
    now: time.now,
  });
  time.advance(2_000);
  bar.tick(4);
  assert.equal(
    out.at(-1),
    "\r\x1b[2Ksteps [##########..............] 4/10 40% 0:02 ETA 0:03 2.00/s",
  );
  bar.done();
  assert.equal(out.at(-2), "\r\x1b[2Ksteps [########################] 10/10 100% 0:02 5.00/s");
  assert.equal(out.at(-1), "\n");
});

Deno.test("createProgress() prints at most one plain line per 10 % and second, plus the final line", () => {
  const out: string[] = [];
  const time = clock();
  const bar = createProgress(100, {
    label: "rows",
    tty: false,
    write: (s) => out.push(s),
    now: time.now,
  });
  for (let i = 0; i < 100; i++) {
    time.advance(50); // 5 s in all
    bar.tick();
  }
  bar.done();
  assert.ok(out.length >= 2 && out.length <= 6, out.join(""));
  assert.equal(out[0], "rows 1/100 1% 0:00 ETA 0:05 20/s\n");
  assert.equal(out.at(-1), "rows 100/100 100% 0:05 20/s\n");
  assert.ok(out.every((line) => !line.includes("\r")));
});

Deno.test("formatSeconds() writes m:ss and h:mm:ss", () => {
  assert.equal(formatSeconds(5.4), "0:05");
  assert.equal(formatSeconds(605), "10:05");
  assert.equal(formatSeconds(3725), "1:02:05");
});
