import assert from "node:assert/strict";
import { evaluateLoss, LossRequestError, parseLossRequest } from "../../kernels/loss_cli.ts";
import { lossReference } from "../../kernels/loss_reference.ts";
import { LOSS_METRICS, LossConfigError } from "../../kernels/losses.ts";
import { makeTestDir } from "../_tmp.ts";
import { assertAllClose } from "./_numeric.ts";

/** SENT's worked example micro-batch, as a request file. */
const REQUEST = {
  method: "sent",
  options: { ppoKlCoef: 0.1, klCovRatio: 0.0002 },
  mask: [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
  advantages: [1, -1],
  entropy: [[0.10, 2.00, 0.05, 0.70, 0.30], [1.50, 0.02, 0.40, 0, 0]],
  logp: [[-0.05, -1.2, -0.02, -0.6, -0.2], [-0.9, -0.01, -0.3, 0, 0]],
  oldLogp: [[-0.05, -1.2, -0.02, -0.4, -0.2], [-0.9, -0.01, -0.4, 0, 0]],
  refLogp: [[-0.05, -1.2, -0.02, -0.6, -0.2], [-0.9, -0.01, -0.3, 0, 0]],
};

async function task(file: string): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-P=pipeline", "kernels/loss_cli.ts", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(stderr).split("\n").filter((l) => !/^\S*Warning/.test(l));
  return { code, out: new TextDecoder().decode(stdout), err: err.join("\n").trim() };
}

Deno.test("evaluateLoss() gives the graph's loss, dloss/dlogp and metrics for a request's micro-batch", async () => {
  const got = await evaluateLoss(parseLossRequest(REQUEST));
  assertAllClose([got.loss], [-0.210445], "SENT loss", { atol: 1e-6 });
  const f = (rows: number[][]) => rows.flat().map(Math.fround);
  const want = lossReference("sent", REQUEST.options, {
    batch: 2,
    width: 5,
    logp: f(REQUEST.logp),
    entropy: f(REQUEST.entropy),
    oldLogp: f(REQUEST.oldLogp),
    refLogp: f(REQUEST.refLogp),
    oldEntropy: f(REQUEST.entropy),
    advantages: REQUEST.advantages,
    mask: REQUEST.mask.flat(),
  });
  assertAllClose(got.gradLogp.flat(), want.gradLogp, "dloss/dlogp", { atol: 1e-6 });
  assert.deepEqual(Object.keys(got.metrics), [...LOSS_METRICS]);
  for (const m of LOSS_METRICS) {
    assertAllClose([got.metrics[m]], [want.metrics[m]], m, { atol: 1e-6 });
  }
});

Deno.test("parseLossRequest() names the key, method or option at fault", () => {
  const bad: [unknown, RegExp][] = [
    [[1], /must be a JSON object/],
    [{ ...REQUEST, extra: 1 }, /unknown key "extra"/],
    [{ ...REQUEST, method: "Sent" }, /unknown loss method "Sent" \(did you mean sent\?\)/],
    [{ ...REQUEST, options: { beta: 1 } }, /option beta is unknown/],
    [{ ...REQUEST, options: { clipLow: 0.2 } }, /option clipLow does not apply to it/],
    [{ ...REQUEST, options: { klCovRatio: 2 } }, /klCovRatio is 2; expected a number in \(0, 1\]/],
    [{ ...REQUEST, refLogp: undefined }, /missing key refLogp/],
    [{ ...REQUEST, logp: [[0, 0]] }, /logp must be a \[2, 5\] array/],
    [{ ...REQUEST, entropy: [[0, 0, 0, 0, "x"], [0, 0, 0, 0, 0]] }, /entropy\[0\] must be 5/],
    [{ ...REQUEST, advantages: [1] }, /advantages must be 2 finite numbers/],
    [{ ...REQUEST, mask: [[1, 1, 1, 1, 2], [1, 1, 1, 0, 0]] }, /mask must hold only 0 and 1/],
  ];
  for (const [json, pattern] of bad) {
    const j = typeof json === "object" && json !== null && !Array.isArray(json)
      ? JSON.parse(JSON.stringify(json))
      : json;
    assert.throws(
      () => parseLossRequest(j),
      (e: unknown) =>
        (e instanceof LossRequestError || e instanceof LossConfigError) && pattern.test(e.message),
      String(pattern),
    );
  }
});

Deno.test("deno task loss prints one JSON line; bad JSON, an unknown method or option exit 2 with one line", async () => {
  const dir = await makeTestDir("loss-cli");
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    return `${dir}/${name}`;
  };
  const ok = await task(await write("ok.json", JSON.stringify(REQUEST)));
  assert.equal(ok.code, 0, ok.err);
  const printed = JSON.parse(ok.out);
  assert.deepEqual(Object.keys(printed), ["loss", "gradLogp", "metrics"]);
  assertAllClose([printed.loss], [-0.210445], "printed loss", { atol: 1e-6 });
  for (
    const [name, text, pattern] of [
      ["broken.json", "{ nope", /broken\.json is not valid JSON/],
      ["method.json", JSON.stringify({ ...REQUEST, method: "ppo" }), /unknown loss method "ppo"/],
      [
        "option.json",
        JSON.stringify({ ...REQUEST, options: { variant: "v9" } }),
        /option variant is "v9"/,
      ],
    ] as const
  ) {
    const r = await task(await write(name, text));
    assert.equal(r.code, 2, name);
    assert.match(r.err, pattern);
    assert.equal(r.err.split("\n").length, 1, `one line: ${r.err}`);
    assert.equal(r.out, "");
  }
  await Deno.remove(dir, { recursive: true });
});
