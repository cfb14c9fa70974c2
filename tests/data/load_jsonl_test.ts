import assert from "node:assert/strict";
import { toProblemRows } from "../../data/fields.ts";
import { DataError } from "../../data/load_errors.ts";
import { parseJsonl, readJsonl } from "../../data/load_jsonl.ts";
import { makeTestDir } from "../_tmp.ts";

const FIELDS = {
  id: "id",
  problem: "problem",
  answer: "answer",
  solution: "solution",
  level: "level",
};

Deno.test("readJsonl() keeps line numbers and allows one final newline", async () => {
  const dir = await makeTestDir("jsonl");
  await Deno.writeTextFile(
    `${dir}/a.jsonl`,
    '{"id":"1","problem":"p","answer":"3"}\n{"id":"2","problem":"q","answer":4}\n',
  );
  const records = await readJsonl(`${dir}/a.jsonl`);
  assert.deepEqual(records.map((r) => r.line), [1, 2]);
  const { rows } = toProblemRows(records, FIELDS, { file: "a.jsonl", idPrefix: "a" });
  assert.deepEqual(rows[1], {
    id: "2",
    problem: "q",
    answer: "4",
    solution: null,
    difficulty: null,
  });
});

Deno.test("parseJsonl() fails on bad JSON, blank lines and non-objects with file and line", () => {
  assert.throws(
    () => parseJsonl('{"a":1}\n{"a":\n', "f.jsonl"),
    /^DataError: f\.jsonl:2: is not valid JSON/,
  );
  assert.throws(
    () => parseJsonl('{"a":1}\n\n{"a":2}\n', "f.jsonl"),
    /f\.jsonl:2: is empty \(expected a JSON object\)/,
  );
  assert.throws(
    () => parseJsonl('{"a":1}\n[1,2]', "f.jsonl"),
    /f\.jsonl:2: is an array \(expected a JSON object\)/,
  );
  assert.throws(() => parseJsonl('"text"', "f.jsonl"), /f\.jsonl:1: is string/);
});

Deno.test("toProblemRows() names file, line and field of a bad row", () => {
  const records = parseJsonl(
    ['{"id":"1","problem":"p","answer":"3"}', '{"id":"2","problem":"q"}'].join("\n"),
    "bad.jsonl",
  );
  try {
    toProblemRows(records, FIELDS, { file: "bad.jsonl", idPrefix: "x" });
    assert.fail("expected a DataError");
  } catch (e) {
    assert.ok(e instanceof DataError);
    assert.equal(e.file, "bad.jsonl");
    assert.equal(e.line, 2);
    assert.equal(e.field, "answer");
    assert.equal(e.message, 'bad.jsonl:2: field "answer" is missing (expected a string or number)');
  }
});

Deno.test("toProblemRows() rejects mistyped, empty and repeated fields", () => {
  const rows = (lines: string[]) => () =>
    toProblemRows(parseJsonl(lines.join("\n"), "f.jsonl"), FIELDS, {
      file: "f.jsonl",
      idPrefix: "f",
    });
  assert.throws(
    rows(['{"id":"1","problem":7,"answer":"3"}']),
    /f\.jsonl:1: field "problem" has type number \(expected a string\)/,
  );
  assert.throws(rows(['{"id":"1","problem":" ","answer":"3"}']), /field "problem" is empty/);
  assert.throws(rows(['{"id":"1","problem":"p","answer":""}']), /field "answer" is empty/);
  assert.throws(
    rows(['{"id":"1","problem":"p","answer":"3","level":"Level 2"}']),
    /field "level" has type string \(expected an integer or null\)/,
  );
  assert.throws(
    rows(['{"id":"1","problem":"p","answer":"3","solution":["a"]}']),
    /field "solution" has an array/,
  );
  assert.throws(
    rows(['{"id":"1","problem":"p","answer":"3"}', '{"id":"1","problem":"q","answer":"4"}']),
    /f\.jsonl:2: field "id" "1" repeats line 1 \(expected unique ids\)/,
  );
});

Deno.test("toProblemRows() follows nested paths and counts dropped duplicates", () => {
  const records = parseJsonl(
    [
      '{"prompt":[{"content":"p1"}],"rm":{"gt":"1"}}',
      '{"prompt":[{"content":"p2"}],"rm":{"gt":"2"}}',
      '{"prompt":[{"content":"p1"}],"rm":{"gt":"1"}}',
    ].join("\n"),
    "n.jsonl",
  );
  const fields = { problem: "prompt.0.content", answer: "rm.gt" };
  const kept = toProblemRows(records, fields, { file: "n.jsonl", idPrefix: "n", dedupe: true });
  assert.deepEqual(kept.rows.map((r) => [r.id, r.problem, r.answer]), [["n-1", "p1", "1"], [
    "n-2",
    "p2",
    "2",
  ]]);
  assert.equal(kept.duplicatesDropped, 1);
  assert.equal(toProblemRows(records, fields, { file: "n.jsonl", idPrefix: "n" }).rows.length, 3);
});
