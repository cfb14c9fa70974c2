import assert from "node:assert/strict";
import { counterBits, counterUniform, streamKey } from "../../kernels/counter_rng.ts";

Deno.test("counterUniform() depends only on (stream, counter) and is spread over [0, 1)", () => {
  const key = streamKey(7, "problem-3", 2);
  assert.deepEqual(streamKey(7, "problem-3", 2), key);
  assert.notDeepEqual(streamKey(7, "problem-3", 3), key);
  assert.notDeepEqual(streamKey("7", "problem-3", 2), key, "numbers and strings are distinct");
  assert.equal(counterUniform(key, 5), counterUniform(key, 5));
  const xs = Array.from({ length: 20000 }, (_, t) => counterUniform(key, t));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01, `mean ${mean}`);
  const bins = new Array(10).fill(0);
  for (const x of xs) bins[Math.floor(x * 10)]++;
  for (const n of bins) assert.ok(Math.abs(n - 2000) < 200, `bins ${bins}`);
  assert.notEqual(counterBits(key, 1, 0), counterBits(key, 1, 1));
});
