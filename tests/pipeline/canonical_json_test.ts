/** canonicalJson(): sorted keys, no whitespace, no silent loss. */

import assert from "node:assert/strict";
import { canonicalJson } from "../../pipeline/canonical_json.ts";

Deno.test("canonicalJson() sorts keys at every depth and keeps array order", () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [3, 1], c: "x" } }),
    '{"a":{"c":"x","d":[3,1]},"b":1}',
  );
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.equal(canonicalJson([null, true, 0.1, "é"]), '[null,true,0.1,"é"]');
});

Deno.test("canonicalJson() rejects values JSON would drop or change, naming where", () => {
  assert.throws(() => canonicalJson({ a: { b: undefined } }), /\$\.a\.b is of type undefined/);
  assert.throws(() => canonicalJson({ lr: NaN }), /\$\.lr is NaN; expected a finite number/);
  assert.throws(() => canonicalJson([1, Infinity]), /\$\[1\] is Infinity/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /\$\.f is of type function/);
});
