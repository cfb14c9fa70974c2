/** Code and engine fingerprints. */

import assert from "node:assert/strict";
import {
  codeFingerprint,
  ENGINE_VERSION,
  engineFingerprint,
  importSpecifiers,
} from "../../pipeline/fingerprint.ts";
import { sha256 } from "../../pipeline/hash.ts";
import { makeTestDir } from "../_tmp.ts";
import { ROOT } from "./_harness.ts";

Deno.test("importSpecifiers() finds static, multi-line, side-effect and literal dynamic imports, skipping types and comments", () => {
  const source = [
    "/**",
    ' * import { fake } from "./in_doc.ts";',
    ' * await import("./in_doc_dynamic.ts");',
    " */",
    'import { a } from "./a.ts";',
    "import {",
    "  b,",
    "  c,",
    '} from "../b.ts";',
    'import type { T } from "./types.ts";',
    'export type { U } from "./more_types.ts";',
    'export * from "./re.ts";',
    'import "./side.ts";',
    'import * as yaml from "yaml";',
    'import { x } from "node:fs";',
    "// const old = await import('./commented.ts');",
    "export async function load() {",
    '  const { heavy } = await import("./heavy.ts");',
    "  return heavy;",
    "}",
  ].join("\n");
  assert.deepEqual(importSpecifiers(source), [
    "./a.ts",
    "../b.ts",
    "./re.ts",
    "yaml",
    "node:fs",
    "./side.ts",
    "./heavy.ts",
  ]);
});

Deno.test("codeFingerprint() hashes the module's local import closure and pins its packages", async () => {
  const dir = await makeTestDir("fingerprint");
  const files: Record<string, string> = {
    "stage.ts":
      'import { helper } from "./lib/helper.ts";\nimport "yaml";\nexport const s = helper;\n',
    "lib/helper.ts":
      'import { deep } from "./deep.ts";\nimport type { T } from "../types.ts";\nexport const helper = deep;\n',
    "lib/deep.ts": 'import "npm:left-pad@1.3.0";\nexport const deep = 1;\n',
    "types.ts": "export type T = number;\n",
    "unrelated.ts": "export const u = 0;\n",
  };
  await Deno.mkdir(`${dir}/lib`);
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const rel = dir.slice(ROOT.length + 1);
  const options = { root: ROOT, importMap: { yaml: "npm:yaml@2.9.1" } };

  const fingerprint = await codeFingerprint(`file://${dir}/stage.ts`, options);
  assert.deepEqual(fingerprint, {
    files: {
      [`${rel}/lib/deep.ts`]: sha256(files["lib/deep.ts"]),
      [`${rel}/lib/helper.ts`]: sha256(files["lib/helper.ts"]),
      [`${rel}/stage.ts`]: sha256(files["stage.ts"]),
    },
    packages: ["npm:left-pad@1.3.0", "npm:yaml@2.9.1"],
  });

  await Deno.writeTextFile(`${dir}/lib/deep.ts`, "// edited\n", { append: true });
  const edited = await codeFingerprint(`file://${dir}/stage.ts`, options);
  assert.notEqual(edited.files[`${rel}/lib/deep.ts`], fingerprint.files[`${rel}/lib/deep.ts`]);
  assert.equal(edited.files[`${rel}/stage.ts`], fingerprint.files[`${rel}/stage.ts`]);

  await Deno.writeTextFile(`${dir}/bad.ts`, 'import "left-pad";\n');
  await assert.rejects(
    codeFingerprint(`file://${dir}/bad.ts`, options),
    /bad\.ts imports "left-pad", which is not in deno\.json "imports" \(known: yaml\)/,
  );
  await Deno.writeTextFile(`${dir}/missing.ts`, 'import "./nope.ts";\n');
  await assert.rejects(
    codeFingerprint(`file://${dir}/missing.ts`, options),
    /cannot read .*nope\.ts/,
  );
});

Deno.test("engineFingerprint() reads the ORT version from package metadata, with device, dtype and Deno", async () => {
  const engine = await engineFingerprint({ root: ROOT, device: "webgpu", dtype: "float16" });
  const pinned =
    JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).imports["onnxruntime-node"];
  assert.equal(`npm:onnxruntime-node@${engine.ort}`, pinned);
  assert.equal(engine.device, "webgpu");
  assert.equal(engine.dtype, "float16");
  assert.equal(engine.deno, Deno.version.deno);
  assert.equal(engine.pipeline, ENGINE_VERSION);
});

Deno.test("codeFingerprint() does not follow imports into the engine folder pipeline/", async () => {
  const fingerprint = await codeFingerprint(new URL("./fixture/train.ts", import.meta.url).href, {
    root: ROOT,
    importMap: {},
  });
  assert.deepEqual(Object.keys(fingerprint.files), [
    "tests/pipeline/fixture/_shared.ts",
    "tests/pipeline/fixture/train.ts",
  ]);
});
