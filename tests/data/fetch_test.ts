import assert from "node:assert/strict";
import { parquetWriteBuffer } from "hyparquet-writer";
import { fetchDataset, fetchDatasets } from "../../data/fetch.ts";
import { REGISTRY } from "../../data/registry.ts";
import { BENCHMARKS, needsBenchmarks } from "../_benchmarks.ts";
import { makeTestDir } from "../_tmp.ts";

const SHARED = BENCHMARKS ?? "../shared/datasets";

/**
 * A local server for the shared files: `/ok/<file>` serves them as they are, `/corrupt/<file>`
 * with one answer changed, `/dapo/dapo-math-17k.parquet` a small DAPO-shaped Parquet file, and
 * everything else is 404.
 */
function serveShared(): { base: string; close: () => Promise<void> } {
  const dapo = new Uint8Array(parquetWriteBuffer({
    columnData: [
      {
        name: "prompt",
        data: [[{ content: "What is 1+1?", role: "user" }], [{
          content: "What is 1+1?",
          role: "user",
        }]],
      },
      { name: "reward_model", data: [{ ground_truth: "2" }, { ground_truth: "2" }] },
      { name: "extra_info", data: [{ index: "a" }, { index: "b" }] },
    ],
  }));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const [, mode, file] = new URL(request.url).pathname.split("/");
      if (mode === "dapo" && file === "dapo-math-17k.parquet") return new Response(dapo);
      if (
        (mode !== "ok" && mode !== "corrupt") || !/^[a-z0-9_]+\.jsonl$/.test(file)
      ) return new Response("no", { status: 404 });
      const text = await Deno.readTextFile(`${SHARED}/${file}`).catch(() => null);
      if (text === null) return new Response("no", { status: 404 });
      return new Response(mode === "ok" ? text : text.replace(/"answer": "(\d)/, '"answer": "9$1'));
    },
  );
  return { base: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test(
  needsBenchmarks(
    "fetchDatasets() downloads every JSONL benchmark from a mirror and verifies sha256 and rows",
  ),
  async () => {
    const server = serveShared();
    try {
      const out = await makeTestDir("fetch-ok");
      const names = REGISTRY.filter((e) => e.format === "jsonl").map((e) => e.name);
      const reports = await fetchDatasets(names, { outDir: out, baseUrl: `${server.base}/ok/` });
      for (const r of reports) {
        const entry = REGISTRY.find((e) => e.name === r.name)!;
        assert.equal(r.status, "ok", `${r.name}: ${r.message}`);
        assert.equal(r.rows, entry.rows);
        assert.equal(r.sha256, entry.sha256);
        assert.deepEqual(r.checks.slice(0, 2), ["sha256 verified", `${entry.rows} rows verified`]);
        assert.deepEqual(
          await Deno.readFile(`${out}/${entry.file}`),
          await Deno.readFile(`${SHARED}/${entry.file}`),
        );
      }
      assert.deepEqual([...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".partial")), []);
      const again = await fetchDataset("aime24", {
        outDir: out,
        baseUrl: `${server.base}/missing`,
      });
      assert.equal(again.status, "ok");
      assert.equal(again.message, "already present");
    } finally {
      await server.close();
    }
  },
);

Deno.test(
  needsBenchmarks(
    "fetchDataset() rejects a corrupted file with a checksum error and writes nothing",
  ),
  async () => {
    const server = serveShared();
    try {
      const out = await makeTestDir("fetch-corrupt");
      const r = await fetchDataset("aime24", { outDir: out, baseUrl: `${server.base}/corrupt` });
      assert.equal(r.status, "failed");
      assert.match(
        r.message,
        /^sha256 mismatch for http:\/\/127\.0\.0\.1:\d+\/corrupt\/aime24\.jsonl: got [0-9a-f]{64}, expected 653b6bec/,
      );
      assert.deepEqual([...Deno.readDirSync(out)], []);
    } finally {
      await server.close();
    }
  },
);

Deno.test("fetchDataset() reports an HTTP 404 and a dataset without a public URL", async () => {
  const server = serveShared();
  try {
    const out = await makeTestDir("fetch-404");
    const missing = await fetchDataset("amc23", { outDir: out, baseUrl: `${server.base}/nowhere` });
    assert.equal(missing.status, "failed");
    assert.match(
      missing.message,
      /^HTTP 404 Not Found from http:\/\/127\.0\.0\.1:\d+\/nowhere\/amc23\.jsonl$/,
    );
    const skipped = await fetchDataset("amc23", { outDir: out });
    assert.equal(skipped.status, "skipped");
    assert.match(
      skipped.message,
      /no public URL serves the normalised amc23\.jsonl; pass --base-url/,
    );
    assert.deepEqual([...Deno.readDirSync(out)], []);
  } finally {
    await server.close();
  }
});

Deno.test("fetchDataset() says plainly that DAPO-Math-17k's checksum and row count are not verified", async () => {
  const server = serveShared();
  try {
    const out = await makeTestDir("fetch-dapo");
    const r = await fetchDataset("dapo_math_17k", { outDir: out, baseUrl: `${server.base}/dapo` });
    assert.equal(r.status, "ok", r.message);
    assert.deepEqual(r.checks, [
      "sha256 unknown in the registry: not verified",
      "row count unknown in the registry: found 2, not verified",
      "all rows map to problems (1 distinct, 1 repeats)",
    ]);
  } finally {
    await server.close();
  }
});

Deno.test(
  needsBenchmarks("deno task fetch-data prints one line per dataset and exits 1 on a failure"),
  async () => {
    const server = serveShared();
    try {
      const out = await makeTestDir("fetch-cli");
      const run = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "-P=fetch", "data/fetch_cli.ts", "--out", out, ...args],
          stdout: "piped",
          stderr: "piped",
        }).output();
      const ok = await run(["aime24", "aime25", "--base-url", `${server.base}/ok`]);
      const okText = new TextDecoder().decode(ok.stdout);
      assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
      assert.match(
        okText,
        /^aime24\s+ok\s+.*aime24\.jsonl: downloaded \d+ bytes; sha256 verified; 30 rows verified/m,
      );
      assert.match(okText, /^2 ok, 0 skipped, 0 failed$/m);
      const bad = await run(["amc23", "--base-url", `${server.base}/corrupt`]);
      assert.equal(bad.code, 1);
      assert.match(new TextDecoder().decode(bad.stdout), /^amc23\s+failed\s+sha256 mismatch/m);
      const unknown = await run(["gsm8k"]);
      assert.equal(unknown.code, 2);
      assert.match(new TextDecoder().decode(unknown.stderr), /unknown dataset "gsm8k"/);
    } finally {
      await server.close();
    }
  },
);
