/** Best / second marks of a table row (reports/rank.ts) on fixed rows, ties included. */

import assert from "node:assert/strict";
import { rankMarks } from "../../reports/rank.ts";

Deno.test("rankMarks() bolds the best and underlines the second when larger is better", () => {
  assert.deepEqual(rankMarks([40, 63.33, 50, 10]), [null, "best", "second", null]);
});

Deno.test("rankMarks() shares the best among ties and then underlines the next value", () => {
  // The paper's AMC23 k = 8 row: 92.50 three times (best), 90.00 three times (second).
  assert.deepEqual(
    rankMarks([80, 87.5, 90, 90, 90, 92.5, 92.5, 85, 92.5]),
    [null, null, "second", "second", "second", "best", "best", null, "best"],
  );
});

Deno.test("rankMarks() shares the second among ties below a single best", () => {
  assert.deepEqual(rankMarks([70, 60, 60, 50]), ["best", "second", "second", null]);
});

Deno.test("rankMarks() compares printed values: 63.333 and 63.334 tie at two decimals, not at three", () => {
  assert.deepEqual(rankMarks([63.333, 63.334, 60]), ["best", "best", "second"]);
  assert.deepEqual(rankMarks([63.333, 63.334, 60], { digits: 3 }), ["second", "best", null]);
});

Deno.test("rankMarks() marks all-equal rows best with no second, and leaves empty cells unmarked", () => {
  assert.deepEqual(rankMarks([0, 0, 0]), ["best", "best", "best"]);
  assert.deepEqual(rankMarks([null, 5, null, 7, NaN]), [null, "second", null, "best", null]);
  assert.deepEqual(rankMarks([]), []);
  assert.deepEqual(rankMarks([null, null]), [null, null]);
});

Deno.test("rankMarks() with higherIsBetter false ranks the smallest first", () => {
  assert.deepEqual(rankMarks([3, 1, 2, 1], { higherIsBetter: false }), [
    null,
    "best",
    "second",
    "best",
  ]);
});
