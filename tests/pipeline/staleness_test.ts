/** explainChange(): which part of a node's inputs changed, in words. */

import assert from "node:assert/strict";
import type { NodeInputs } from "../../pipeline/cache_key.ts";
import { explainChange } from "../../pipeline/staleness.ts";

const before: NodeInputs = {
  stage: "train",
  params: { seed: 1 },
  code: {
    files: { "stages/train.ts": "aa", "stages/_util.ts": "bb" },
    packages: ["npm:yaml@2.9.1"],
  },
  config: { train: { lr: 0.001, groupSize: 8 } },
  upstream: { "data": "1111111111111111" },
  engine: { pipeline: "1", ort: "1.30.0", device: "cpu", dtype: "float32", deno: "2.9.6" },
};

Deno.test("explainChange() names engine fields, config keys, source files, packages and upstream nodes", () => {
  const after: NodeInputs = {
    ...before,
    code: {
      files: { "stages/train.ts": "cc", "stages/new.ts": "dd" },
      packages: ["npm:yaml@2.9.2"],
    },
    config: { train: { lr: 0.002, groupSize: 8, epochs: 2 } },
    upstream: { "data": "2222222222222222", "base": "3333333333333333" },
    engine: { ...before.engine, device: "webgpu" },
  };
  assert.deepEqual(explainChange(before, after), [
    'engine device: "cpu" → "webgpu"',
    "config train.epochs: (absent) → 2",
    "config train.lr: 0.001 → 0.002",
    "source file stages/_util.ts no longer imported",
    "source file stages/new.ts added",
    "source file stages/train.ts changed",
    "package npm:yaml@2.9.2 added",
    "package npm:yaml@2.9.1 removed",
    "upstream data changed (11111111 → 22222222)",
    "upstream added: base",
  ]);
  assert.deepEqual(explainChange(before, before), []);
});

Deno.test("explainChange() summarises many changed upstream nodes in one line", () => {
  const many = (digit: string) =>
    Object.fromEntries([1, 2, 3, 4].map((i) => [`eval[seed=${i}]`, digit.repeat(16)]));
  const lines = explainChange({ ...before, upstream: many("1") }, {
    ...before,
    upstream: many("2"),
  });
  assert.deepEqual(lines, [
    "4 upstream nodes changed: eval[seed=1], eval[seed=2], eval[seed=3] and 1 more",
  ]);
});
