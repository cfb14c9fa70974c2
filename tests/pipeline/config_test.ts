/** Config: presets, overrides and schema errors that name the key, the value and the expectation. */

import assert from "node:assert/strict";
import { ConfigError, DEFAULT_PRESETS_DIR, getPath, loadConfig } from "../../pipeline/config.ts";
import { METHODS } from "../../pipeline/config_core.ts";
import {
  childNames,
  configSchema,
  describeExpected,
  registerConfigSection,
} from "../../pipeline/config_schema.ts";
import { makeTestDir } from "../_tmp.ts";
import { sent } from "./_harness.ts";

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error("expected a ConfigError");
}

/** The valid names at a level of the schema, as the error messages list them. */
const keysOf = (prefix: string) => childNames(prefix).join(", ");

async function preset(name: string, yaml: string): Promise<string> {
  const path = `${await makeTestDir(`config-${name}`)}/${name}.yaml`;
  await Deno.writeTextFile(path, yaml);
  return path;
}

Deno.test("loadConfig() loads the tiny preset and every core key validates", async () => {
  const config = await loadConfig();
  assert.equal(config.preset, "tiny");
  assert.deepEqual(getPath(config.values, "train.methods"), ["grpo", "sent"]);
  assert.deepEqual(getPath(config.values, "runtime.seeds"), [1, 2]);
  assert.equal(getPath(config.values, "base.model.width"), 192);
  for (const path of configSchema().keys()) {
    if (!path.startsWith("fixture.")) {
      assert.notEqual(getPath(config.values, path), undefined, path);
    }
  }
});

Deno.test("loadConfig() applies typed --set overrides and --device", async () => {
  const config = await loadConfig({
    sets: [
      "train.lr=3e-4",
      "runtime.seeds=[1, 2, 3]",
      `train.methods=${METHODS[2]},${METHODS[0]},${METHODS[1]}`,
      "curriculum.resetReference=false",
    ],
    device: "webgpu",
  });
  assert.equal(getPath(config.values, "train.lr"), 0.0003);
  assert.deepEqual(getPath(config.values, "runtime.seeds"), [1, 2, 3]);
  assert.deepEqual(getPath(config.values, "train.methods"), [METHODS[2], METHODS[0], METHODS[1]]);
  assert.equal(getPath(config.values, "curriculum.resetReference"), false);
  assert.equal(getPath(config.values, "runtime.device"), "webgpu");
});

Deno.test("loadConfig() rejects bad --set values naming the key, the value and the expected type", async () => {
  const problems = await problemsOf(loadConfig({
    sets: [
      "train.lr=fast",
      "train.groupSize=2.5",
      "runtime.seeds=1,x",
      "runtime.device=gpu",
      "train.lr",
    ],
  }));
  assert.deepEqual(problems, [
    '--set train.lr=fast: config key "train.lr" got "fast"; expected a number ≥ 0',
    '--set train.groupSize=2.5: config key "train.groupSize" got "2.5"; expected an integer ≥ 2',
    '--set runtime.seeds=1,x: config key "runtime.seeds" got "1,x"; expected a list (at least 1) of integers ≥ 0; item 1 "x" is not an integer ≥ 0',
    '--set runtime.device=gpu: config key "runtime.device" got "gpu"; expected one of cpu, webgpu, cuda',
    "--set train.lr: expected key=value, e.g. --set train.lr=0.0003",
  ]);
});

Deno.test("loadConfig() rejects an unknown --set key and lists the valid keys at its level", async () => {
  const [unknown] = await problemsOf(loadConfig({ sets: ["train.lrr=1"] }));
  assert.equal(
    unknown,
    `--set train.lrr=1: unknown config key "train.lrr" = "1"; valid keys under "train": ${
      keysOf("train")
    }`,
  );
  const [nested] = await problemsOf(loadConfig({ sets: ["base.model.depth=3"] }));
  assert.match(
    nested,
    /unknown config key "base\.model\.depth" = "3"; valid keys under "base\.model": /,
  );
  assert.ok(nested.endsWith(`: ${keysOf("base.model")}`), nested);
  const [section] = await problemsOf(loadConfig({ sets: ["base.model=3"] }));
  assert.match(section, /"base\.model" is a section; set one of its keys: base\.model\.context, /);
});

Deno.test("loadConfig() reports every problem of a preset file: unknown key and section, bad value, wrong shape", async () => {
  const path = await preset(
    "bad",
    [
      "extends: tiny",
      "train:",
      "  lrr: 0.1",
      "  lr: -1",
      "trian:",
      "  lr: 1",
      "score: 3",
      "runtime:",
      "  device: tpu",
    ].join("\n"),
  );
  const problems = await problemsOf(loadConfig({ preset: path }));
  assert.deepEqual(
    [...problems].sort(),
    [
      `unknown config key "train.lrr" = 0.1 (preset ${path}); valid keys under "train": ${
        keysOf("train")
      }`,
      `config key "train.lr" = -1 (preset ${path}): expected a number ≥ 0`,
      `unknown config section "trian" = {"lr":1} (preset ${path}); valid sections: ${keysOf("")}`,
      `config key "score" = 3 (preset ${path}): expected a section with keys ${keysOf("score")}`,
      `config key "runtime.device" = "tpu" (preset ${path}): expected one of cpu, webgpu, cuda`,
    ].sort(),
  );
});

Deno.test("loadConfig() names missing required keys, and an extends chain overrides its parent", async () => {
  // The tiny preset without data.seed, written out whole (no extends).
  const { parse, stringify } = await import("yaml");
  const tiny = parse(await Deno.readTextFile(`${DEFAULT_PRESETS_DIR}/tiny.yaml`));
  delete tiny.data.seed;
  const lone = await preset("lone", stringify(tiny));
  const problems = await problemsOf(loadConfig({ preset: lone }));
  assert.deepEqual(problems, [
    `config key "data.seed" is missing (preset ${lone}): expected an integer ≥ 0`,
  ]);

  const child = await preset("child", `extends: tiny\ntrain:\n  methods: [${METHODS[1]}]\n`);
  const config = await loadConfig({ preset: child });
  assert.deepEqual(getPath(config.values, "train.methods"), [METHODS[1]]);
  assert.equal(getPath(config.values, "train.groupSize"), 8);
});

Deno.test("loadConfig() lists the available presets for an unknown preset name", async () => {
  const [problem] = await problemsOf(loadConfig({ preset: "huge" }));
  assert.match(problem, /^unknown preset "huge"; available presets: .*tiny/);
});

Deno.test("registerConfigSection() adds keys with defaults and refuses duplicates, strays and bad defaults", async () => {
  registerConfigSection("demo", {
    "demo.size": { type: "int", min: 1, default: 4, doc: "Items per batch." },
  });
  assert.equal(getPath((await loadConfig()).values, "demo.size"), 4);
  assert.equal(getPath((await loadConfig({ sets: ["demo.size=9"] })).values, "demo.size"), 9);
  assert.throws(
    () => registerConfigSection("demo", { "demo.size": { type: "int", doc: "again" } }),
    /key "demo\.size" is already registered; pass \{ override: true \} to replace it/,
  );
  assert.throws(
    () => registerConfigSection("demo", { "other.x": { type: "int", doc: "stray" } }),
    /key "other\.x" is outside the section/,
  );
  assert.throws(
    () =>
      registerConfigSection("demo", {
        "demo.rate": { type: "number", min: 0, default: -1, doc: "bad" },
      }),
    /default of "demo\.rate" is -1; expected a number ≥ 0/,
  );
});

Deno.test("describeExpected() words every type for error messages", () => {
  const schema = configSchema();
  assert.equal(describeExpected(schema.get("train.lr")!), "a number ≥ 0");
  assert.equal(describeExpected(schema.get("train.topP")!), "a number in [0, 1]");
  assert.equal(describeExpected(schema.get("curriculum.resetReference")!), "true or false");
  assert.equal(describeExpected(schema.get("report.title")!), "a string");
  assert.equal(
    describeExpected(schema.get("train.methods")!),
    `a list (at least 1) of values from ${METHODS.join(", ")}`,
  );
});

Deno.test("the CLI prints config problems with the key path and exits 2", async () => {
  const result = await sent(["reproduce", "--set", "train.lr=abc", "--set", "runtime.seeds=-1"]);
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /sent reproduce: invalid config:\n {2}--set train\.lr=abc: config key "train\.lr" got "abc"; expected a number ≥ 0\n {2}--set runtime\.seeds=-1: .*expected a list \(at least 1\) of integers ≥ 0/,
  );
});

Deno.test("loadConfig() rejects unknown, empty and repeated eval-set names, naming the valid sets", async () => {
  const cases: [string, RegExp][] = [
    ["data.evalSets=aime2", /item 0 "aime2" is not one of them/],
    ['data.evalSets=[""]', /item 0 "" is not one of them/],
    ["data.evalSets=[tiny-aime24,tiny-aime24]", /item 1 "tiny-aime24" repeats item 0/],
  ];
  for (const [set, detail] of cases) {
    const [problem] = await problemsOf(loadConfig({ sets: [set] }));
    assert.match(
      problem,
      /config key "data\.evalSets" got .*; expected a list \(at least 1\) of distinct values from /,
    );
    assert.match(problem, /\btiny-aime24\b.*\baime24\b/, "the valid sets are listed");
    assert.match(problem, detail);
  }
  const path = await preset("evalsets", "extends: tiny\ndata:\n  evalSets: [aime24, nope]\n");
  const [fromPreset] = await problemsOf(loadConfig({ preset: path }));
  assert.match(
    fromPreset,
    /config key "data\.evalSets" = \["aime24","nope"\] .*item 1 "nope" is not one of them/,
  );
});

Deno.test("loadConfig() bounds integers: 1e20 problems is not a size", async () => {
  const [fromSet] = await problemsOf(
    loadConfig({ sets: ["data.trainProblems=100000000000000000000"] }),
  );
  assert.match(
    fromSet,
    /config key "data\.trainProblems" got "100000000000000000000"; expected an integer ≥ 1; 1e\+20 is above 2147483647, the largest integer a config key takes/,
  );
  const path = await preset("huge", "extends: tiny\ndata:\n  trainProblems: 1e20\n");
  const [fromPreset] = await problemsOf(loadConfig({ preset: path }));
  assert.match(
    fromPreset,
    /config key "data\.trainProblems" = 100000000000000000000 .*above 2147483647/,
  );
});

Deno.test("loadConfig() answers a preset without extends in one line that suggests extends: tiny", async () => {
  const lone = await preset("lone2", "train:\n  lr: 0.1\n");
  const problems = await problemsOf(loadConfig({ preset: lone }));
  assert.equal(problems.length, 1, problems.join("\n"));
  assert.match(
    problems[0],
    /^preset .*lone2\.yaml leaves out \d+ required keys \(data\.task, data\.seed, .*\); a preset that changes a few keys starts with "extends: tiny"$/,
  );
});

Deno.test("loadConfig() says a preset file outside the project is outside the readable paths", async () => {
  const [problem] = await problemsOf(loadConfig({ preset: "/etc/sent-preset.yaml" }));
  assert.match(
    problem,
    /^preset file "\/etc\/sent-preset\.yaml" is outside the folders the pipeline may read \(the project folder .*\); copy it into the project$/,
  );
});
