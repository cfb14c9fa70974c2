/**
 * A small pipeline with a sharded stage, for the tests of sharding and of the executors (run
 * through the fixture CLI with SENT_FIXTURE_STAGES pointing here):
 *
 * ```
 * numbers ─┬─ squares            (sharded over its items: squares.shards)
 *          └─ pair[branch=a|b]   (two independent nodes)
 * ```
 *
 * Every artifact's manifest metrics name the process that made it (`pid`) and the threads it
 * was given, so tests can tell where a task ran.
 *
 * Test hooks (environment, not part of the cache key):
 * - SENT_SHARD_FAIL=<task id>: that node or shard throws (e.g. `squares#2/4`).
 * - SENT_SHARD_PAUSE=<file>: a pair node writes its pid to `<file>.<branch>` and waits while
 *   <file> exists.
 * - SENT_SHARD_SLEEP_MS=<ms>: each pair node and each shard waits that long first.
 */

import { registerConfigSection } from "../../pipeline/config_schema.ts";
import { defineStage, type Stage, type StageContext } from "../../pipeline/stage.ts";

registerConfigSection("squares", {
  "squares.items": { type: "int", min: 0, default: 10, doc: "Work units of the squares stage." },
  "squares.shards": { type: "int", min: 1, default: 1, doc: "Shards of the squares stage." },
  "squares.offset": { type: "int", default: 3, doc: "Added to every square." },
});

type Config = { squares: { items: number; offset: number } };

/** Fail or wait as the test hooks say. */
async function hooks(ctx: StageContext<unknown>): Promise<void> {
  if (Deno.env.get("SENT_SHARD_FAIL") === ctx.node) {
    throw new Error(`planned failure of ${ctx.node}`);
  }
  const ms = Number(Deno.env.get("SENT_SHARD_SLEEP_MS") ?? 0);
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
  ctx.metrics.summary({ pid: Deno.pid, threads: ctx.threads });
}

const numbers = defineStage<Config>({
  name: "numbers",
  module: import.meta.url,
  doc: "The items 0 … n − 1.",
  configKeys: ["squares.items"],
  async run(ctx) {
    await hooks(ctx);
    const items = Array.from({ length: ctx.config.squares.items }, (_, i) => i);
    await Deno.writeTextFile(`${ctx.outDir}/items.json`, JSON.stringify(items));
  },
});

/** The lines of a range of items: item, its square plus the offset. */
function lines(items: number[], offset: number): string {
  return items.map((i) => `${JSON.stringify({ item: i, value: i * i + offset })}\n`).join("");
}

const squares = defineStage<Config>({
  name: "squares",
  module: import.meta.url,
  doc: "Each item's square: one line per item, and a total.",
  upstream: ["numbers"],
  configKeys: ["squares"],
  async run(ctx) {
    await hooks(ctx);
    const items = await ctx.input("numbers").readJson<number[]>("items.json");
    await write(ctx, lines(items, ctx.config.squares.offset));
  },
  shards: {
    count: "squares.shards",
    async run(ctx, shard) {
      await hooks(ctx);
      const items = await ctx.input("numbers").readJson<number[]>("items.json");
      const [start, end] = shard.range(items.length);
      await Deno.writeTextFile(
        `${ctx.outDir}/part.jsonl`,
        lines(items.slice(start, end), ctx.config.squares.offset),
      );
    },
    async merge(ctx, shards) {
      ctx.metrics.summary({ pid: Deno.pid, threads: ctx.threads });
      const parts = await Promise.all(shards.map((shard) => shard.readText("part.jsonl")));
      await write(ctx, parts.join(""));
    },
  },
});

async function write(ctx: StageContext<Config>, text: string): Promise<void> {
  const total = text.split("\n").filter((line) => line !== "")
    .reduce((sum, line) => sum + JSON.parse(line).value, 0);
  await Deno.writeTextFile(`${ctx.outDir}/squares.jsonl`, text);
  await Deno.writeTextFile(`${ctx.outDir}/total.json`, JSON.stringify({ total }));
}

const pair = defineStage<Config>({
  name: "pair",
  module: import.meta.url,
  doc: "The items, once per branch.",
  upstream: ["numbers"],
  configKeys: ["squares.offset"],
  params: { branch: ["a", "b"] },
  async run(ctx) {
    const pause = Deno.env.get("SENT_SHARD_PAUSE");
    if (pause) {
      await Deno.writeTextFile(`${pause}.${ctx.params.branch}`, String(Deno.pid));
      while (await exists(pause)) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await hooks(ctx);
    const items = await ctx.input("numbers").readJson<number[]>("items.json");
    await Deno.writeTextFile(
      `${ctx.outDir}/items.json`,
      JSON.stringify({ branch: ctx.params.branch, items }),
    );
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The stages. */
export const stages: readonly Stage[] = [numbers, squares, pair];
