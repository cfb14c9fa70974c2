import assert from "node:assert/strict";
import { parquetWriteBuffer } from "hyparquet-writer";
import { DataError } from "../../data/load_errors.ts";
import { parseParquet, readParquet } from "../../data/load_parquet.ts";
import { loadDataset } from "../../data/load_dataset.ts";
import { REGISTRY } from "../../data/registry.ts";
import { BENCHMARKS, needsBenchmarks } from "../_benchmarks.ts";
import { makeTestDir } from "../_tmp.ts";

const SHARED = BENCHMARKS ?? "../shared/datasets";

Deno.test(
  needsBenchmarks(
    "loadDataset() loads every shared benchmark with verified sha256 and the expected count",
  ),
  async () => {
    for (const entry of REGISTRY.filter((e) => e.format === "jsonl")) {
      const data = await loadDataset(entry.name, { dataDir: SHARED, verify: true });
      assert.equal(data.rows.length, entry.rows, entry.name);
      assert.equal(data.duplicatesDropped, 0);
      assert.ok(
        data.rows.every((r) => r.id !== "" && r.problem !== "" && r.answer !== ""),
        entry.name,
      );
    }
  },
);

Deno.test(
  needsBenchmarks("loadDataset() keeps MATH levels as difficulty and solutions where present"),
  async () => {
    const math = await loadDataset("math500", { dataDir: SHARED });
    const levels = new Map<number, number>();
    for (const r of math.rows) {
      levels.set(r.difficulty!.level, (levels.get(r.difficulty!.level) ?? 0) + 1);
    }
    assert.deepEqual(Object.fromEntries([...levels].sort()), {
      1: 43,
      2: 90,
      3: 105,
      4: 128,
      5: 134,
    });
    assert.ok(math.rows.every((r) => typeof r.solution === "string"));
    const train = await loadDataset("math_train", { dataDir: SHARED });
    assert.equal(train.rows.filter((r) => r.difficulty === null).length, 2); // "Level ?" rows
    const aime25 = await loadDataset("aime25", { dataDir: SHARED });
    assert.ok(aime25.rows.every((r) => r.solution === null));
    assert.deepEqual(aime25.rows.slice(0, 3).map((r) => r.answer), ["70", "588", "16"]);
  },
);

Deno.test("loadDataset() generates the built-in splits with the tiny-AIME extractor", async () => {
  const data = await loadDataset("tiny-aime25", { seed: 3, size: 10 });
  assert.equal(data.source, "builtin");
  assert.equal(data.rows.length, 10);
  assert.deepEqual(data.extraction.order, ["hash"]);
});

Deno.test(
  needsBenchmarks(
    "loadDataset() says which file is missing, which checksum is wrong and which name is unknown",
  ),
  async () => {
    const dir = await makeTestDir("load");
    await assert.rejects(
      loadDataset("aime24", { dataDir: dir }),
      /aime24\.jsonl:0: does not exist; run `deno task fetch-data aime24` first/,
    );
    const text = await Deno.readTextFile(`${SHARED}/aime24.jsonl`);
    await Deno.writeTextFile(`${dir}/aime24.jsonl`, text.replace('"204"', '"205"'));
    await assert.rejects(
      loadDataset("aime24", { dataDir: dir, verify: true }),
      /has sha256 [0-9a-f]{64} \(expected 653b6bec/,
    );
    assert.equal((await loadDataset("aime24", { dataDir: dir })).rows[0].answer, "205");
    await assert.rejects(
      loadDataset("aime26"),
      /unknown dataset "aime26"; registered: aime24, aime25.*; built-in: tiny-aime-train, tiny-aime24, tiny-aime25$/,
    );
  },
);

/** A small Parquet file with the DAPO-Math-17k column layout (nested prompt and reward model). */
function dapoShapedParquet(problems: Array<[string, string]>): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "data_source", data: problems.map(() => "math_dapo") },
      { name: "prompt", data: problems.map(([p]) => [{ content: p, role: "user" }]) },
      {
        name: "reward_model",
        data: problems.map(([, a]) => ({ ground_truth: a, style: "rule-lighteval/MATH_v2" })),
      },
      { name: "extra_info", data: problems.map((_, k) => ({ index: `id-${k}` })) },
    ],
  });
  return new Uint8Array(buffer);
}

Deno.test("loadDataset() reads DAPO-shaped Parquet through the registry's field mapping and dedupes", async () => {
  const dir = await makeTestDir("parquet");
  await Deno.writeFile(
    `${dir}/dapo-math-17k.parquet`,
    dapoShapedParquet([["What is 1+1?", "2"], ["What is 2+2?", "4"], ["What is 1+1?", "2"]]),
  );
  const records = await readParquet(`${dir}/dapo-math-17k.parquet`);
  assert.deepEqual(records.map((r) => r.line), [1, 2, 3]);
  const data = await loadDataset("dapo_math_17k", { dataDir: dir, verify: true });
  assert.deepEqual(data.rows.map((r) => [r.id, r.problem, r.answer]), [[
    "id-0",
    "What is 1+1?",
    "2",
  ], ["id-1", "What is 2+2?", "4"]]);
  assert.equal(data.duplicatesDropped, 1);
  assert.deepEqual(data.extraction.order, ["answer_line", "boxed"]);
});

Deno.test("parseParquet() names a bad Parquet row's field and rejects non-Parquet bytes", async () => {
  const bad = new Uint8Array(parquetWriteBuffer({
    columnData: [
      {
        name: "prompt",
        data: [[{ content: "ok", role: "user" }], [{ content: "ok2", role: "user" }]],
      },
      { name: "reward_model", data: [{ ground_truth: "1" }, { ground_truth: null }] },
      { name: "extra_info", data: [{ index: "a" }, { index: "b" }] },
    ],
  }));
  const dir = await makeTestDir("parquet-bad");
  await Deno.writeFile(`${dir}/dapo-math-17k.parquet`, bad);
  await assert.rejects(
    loadDataset("dapo_math_17k", { dataDir: dir }),
    (e) =>
      e instanceof DataError && e.line === 2 && e.field === "reward_model.ground_truth" &&
      /has null/.test(e.message),
  );
  await assert.rejects(
    parseParquet(new TextEncoder().encode("not parquet at all"), "x.parquet"),
    /x\.parquet:0: is not a readable Parquet file/,
  );
});
