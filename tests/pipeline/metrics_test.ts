/** createMetricsSink(): rows survive an interrupted attempt only as far as the stage resumes them. */

import assert from "node:assert/strict";
import { createMetricsSink } from "../../pipeline/metrics.ts";
import { makeTestDir } from "../_tmp.ts";

Deno.test("createMetricsSink() keeps the resumed rows of an interrupted attempt and drops the rest", async () => {
  const dir = await makeTestDir("metrics");
  await Deno.mkdir(`${dir}/scratch`);
  await Deno.mkdir(`${dir}/out`);
  const first = createMetricsSink(`${dir}/scratch`, "train");
  for (let step = 1; step <= 5; step++) first.writer.log({ step });
  first.close(); // killed after logging 5 rows; its checkpoint said 3

  const second = createMetricsSink(`${dir}/scratch`, "train");
  second.writer.resume(3);
  assert.equal(second.writer.count, 3);
  second.writer.log({ step: 4 });
  second.writer.summary({ loss: 0.25 });
  second.finish(`${dir}/out`);
  const rows = (await Deno.readTextFile(`${dir}/out/metrics.jsonl`)).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  assert.deepEqual(rows, [{ step: 1 }, { step: 2 }, { step: 3 }, { step: 4 }]);
  assert.deepEqual(second.summary, { loss: 0.25 });
});

Deno.test("createMetricsSink() starts empty without resume, and resume() checks its argument", async () => {
  const dir = await makeTestDir("metrics-fresh");
  const first = createMetricsSink(dir, "node");
  first.writer.log({ a: 1 });
  first.close();
  const second = createMetricsSink(dir, "node");
  assert.throws(
    () => second.writer.resume(2),
    /node: ctx\.metrics\.resume\(2\): the interrupted attempt logged only 1 rows/,
  );
  second.writer.log({ a: 2 });
  assert.throws(() => second.writer.resume(1), /must come before the first ctx\.metrics\.log/);
  await Deno.mkdir(`${dir}/out`);
  second.finish(`${dir}/out`);
  assert.equal(await Deno.readTextFile(`${dir}/out/metrics.jsonl`), '{"a":2}\n');
});
