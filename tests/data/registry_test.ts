import assert from "node:assert/strict";
import { datasetEntry, REGISTRY } from "../../data/registry.ts";
import { needsSharedReadme } from "../_benchmarks.ts";

Deno.test(
  needsSharedReadme(
    "REGISTRY matches the row counts and sha256 table of ../shared/datasets/README.md",
  ),
  async () => {
    const readme = await Deno.readTextFile("../shared/datasets/README.md");
    const table = new Map<string, { rows: number; sha256: string }>();
    for (const m of readme.matchAll(/^\| (\S+\.jsonl) \| (\d+) \| ([0-9a-f]{64}) \|$/gm)) {
      table.set(m[1], { rows: Number(m[2]), sha256: m[3] });
    }
    assert.equal(table.size, 8);
    for (const [file, expected] of table) {
      const entry = REGISTRY.find((e) => e.file === file);
      assert.ok(entry, `no registry entry for ${file}`);
      assert.deepEqual({ rows: entry.rows, sha256: entry.sha256 }, expected, file);
    }
  },
);

Deno.test("REGISTRY covers the paper's benchmarks and training sets with unique names", () => {
  const names = REGISTRY.map((e) => e.name);
  assert.equal(new Set(names).size, names.length);
  for (
    const name of [
      "aime24",
      "aime25",
      "amc23",
      "math500",
      "minerva_math",
      "olympiadbench",
      "math_train",
      "dapo_math_17k",
    ]
  ) {
    assert.ok(names.includes(name), name);
  }
  for (const e of REGISTRY) {
    assert.ok(e.upstream.repo && e.upstream.commit && e.upstream.path, e.name);
    assert.ok(e.license !== "", e.name);
    assert.ok(e.extraction.order.length > 0, e.name);
    assert.ok(e.url !== null || e.sha256 !== null, `${e.name}: neither a URL nor a checksum`);
  }
});

Deno.test("datasetEntry() describes DAPO-Math-17k as Parquet with unknown row count and checksum", () => {
  const dapo = datasetEntry("dapo_math_17k");
  assert.equal(dapo.format, "parquet");
  assert.deepEqual(dapo.fields, {
    id: "extra_info.index",
    problem: "prompt.0.content",
    answer: "reward_model.ground_truth",
  });
  assert.equal(dapo.rows, null);
  assert.equal(dapo.sha256, null);
  assert.match(
    dapo.url!,
    /^https:\/\/huggingface\.co\/datasets\/BytedTsinghua-SIA\/DAPO-Math-17k\//,
  );
});

Deno.test("datasetEntry() lists the registered names for an unknown one", () => {
  assert.throws(
    () => datasetEntry("gsm8k"),
    /unknown dataset "gsm8k"; registered: aime24, aime25, amc23/,
  );
});
