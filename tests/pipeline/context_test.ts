/** buildContext() and makeArtifact(): what a stage sees, and the errors it gets when misusing it. */

import assert from "node:assert/strict";
import { buildContext, makeArtifact } from "../../pipeline/context.ts";
import { loadConfig } from "../../pipeline/config.ts";
import { buildGraph } from "../../pipeline/graph.ts";
import { defineStage } from "../../pipeline/stage.ts";
import type { Manifest } from "../../pipeline/store.ts";
import { makeTestDir } from "../_tmp.ts";
import { ROOT } from "./_harness.ts";

const noop = () => Promise.resolve();

Deno.test("buildContext() gives the config slice, params, a node-seeded rng and upstream artifacts", async () => {
  const dir = await makeTestDir("context");
  const data = defineStage({ name: "data", module: import.meta.url, run: noop });
  const train = defineStage({
    name: "train",
    module: import.meta.url,
    upstream: ["data"],
    configKeys: ["train.lr", "runtime"],
    params: { seed: "runtime.seeds" },
    run: noop,
  });
  const config = await loadConfig({ sets: ["train.lr=0.00001", "runtime.seeds=1,2"] });
  const graph = await buildGraph([data, train], config, { root: ROOT });
  const node = graph.byId.get("train[seed=2]")!;
  const manifest = {
    node: "data",
    stage: "data",
    params: {},
    key: graph.byId.get("data")!.key,
  } as Manifest;
  await Deno.writeTextFile(`${dir}/rows.json`, "[1,2]");
  const artifacts = new Map([["data", makeArtifact(dir, manifest)]]);
  const built = buildContext(node, {
    outDir: dir,
    scratchDir: dir,
    device: "cpu",
    threads: 1,
    artifacts,
  });
  const { ctx } = built;
  assert.deepEqual(ctx.config, {
    train: { lr: 0.00001 },
    runtime: { ...(config.values.runtime as object), seeds: [1, 2] },
  });
  assert.deepEqual(ctx.params, { seed: 2 });
  assert.deepEqual(await ctx.input("data").readJson("rows.json"), [1, 2]);
  assert.equal(ctx.upstream.data.length, 1);
  const again = buildContext(node, {
    outDir: dir,
    scratchDir: dir,
    device: "cpu",
    threads: 1,
    artifacts,
  });
  assert.equal(ctx.rng.nextU32(), again.ctx.rng.nextU32());
  assert.throws(
    () => ctx.input("base"),
    /train\[seed=2\]: ctx\.input\("base"\): "base" is not an upstream of this stage \(upstream: data\)/,
  );
  assert.throws(
    () => ctx.upstream.data[0].path("../escape"),
    /"\.\.\/escape" must be a path inside the artifact/,
  );
  await Deno.writeTextFile(`${dir}/bad.json`, "{");
  await assert.rejects(
    ctx.input("data").readJson("bad.json"),
    /artifact data: bad\.json is not valid JSON/,
  );
  built.close();
  again.close();
});
