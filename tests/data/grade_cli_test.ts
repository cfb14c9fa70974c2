import assert from "node:assert/strict";

async function grade(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=pipeline", "data/grade_cli.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code, out: new TextDecoder().decode(stdout), err: new TextDecoder().decode(stderr) };
}

Deno.test("deno task grade prints true or false for PRED GOLD", async () => {
  const yes = await grade("\\dfrac{1}{2}", "0.5");
  assert.deepEqual([yes.code, yes.out], [0, "true\n"]);
  const no = await grade("(1,2]", "(1,2)");
  assert.deepEqual([no.code, no.out], [0, "false\n"]);
  assert.equal((await grade("3.1416", "\\pi", "--rel-tol", "1e-4")).out, "true\n");
});

Deno.test("deno task grade explains a wrong number of arguments", async () => {
  const r = await grade("5");
  assert.equal(r.code, 2);
  assert.match(r.err, /expected 2 arguments \(PRED GOLD\), got 1/);
});

Deno.test("deno task grade takes negative numbers as answers, not as flags", async () => {
  const same = await grade("-5", "-5");
  assert.deepEqual([same.code, same.out, same.err], [0, "true\n", ""]);
  assert.equal((await grade("-0.5", "-\\frac{1}{2}")).out, "true\n");
  assert.equal((await grade("-5", "5")).out, "false\n");
  assert.equal((await grade("--", "--5", "--5")).out, "true\n");
});

Deno.test("deno task grade names an unknown flag or a bad --rel-tol in one line, exit 2", async () => {
  for (
    const args of [["--strict", "1", "1"], ["1", "1", "--rel-tol", "x"], ["1", "1", "--rel-tol"]]
  ) {
    const r = await grade(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
    assert.match(r.err, /^grade: /);
    assert.doesNotMatch(r.err, /\s+at /);
  }
  assert.match(
    (await grade("--strict", "1", "1")).err,
    /unknown flag --strict; flags: --mode lenient\|opencompass-v2, --rel-tol X, --help/,
  );
});

Deno.test("deno task grade --mode opencompass-v2 compares by the harness's string rules", async () => {
  const v2 = await grade("0.5", "\\frac{1}{2}", "--mode", "opencompass-v2");
  assert.deepEqual([v2.code, v2.out, v2.err], [0, "false\n", ""]);
  assert.equal((await grade("0.5", "\\frac{1}{2}", "--mode=lenient")).out, "true\n");
  assert.equal(
    (await grade("\\dfrac{1}{2}", "\\frac12", "--mode", "opencompass-v2")).out,
    "true\n",
  );
  assert.equal((await grade("-5", "-5", "--mode", "opencompass-v2")).out, "true\n");
});

Deno.test("deno task grade reads a \\boxed{} prediction by its last box", async () => {
  assert.equal((await grade("so the answer is \\boxed{-5}.", "-5")).out, "true\n");
  assert.equal(
    (await grade("\\boxed{0.5}", "\\frac{1}{2}", "--mode", "opencompass-v2")).out,
    "false\n",
  );
  assert.equal((await grade("\\boxed{\\frac{1}{2}}", "0.5")).out, "true\n");
  // An unbalanced box is graded as it is: no answer text makes the command fail.
  assert.equal((await grade("\\boxed{5", "5")).out, "false\n");
});

Deno.test("deno task grade never fails on hostile answers and names a bad --mode in one line", async () => {
  for (const pred of ["10^{10^{10}}", "2^{99999999}", "(".repeat(5000), "\\frac{", "", "x/"]) {
    for (const mode of ["lenient", "opencompass-v2"]) {
      const r = await grade(pred, "1", "--mode", mode);
      assert.deepEqual([r.code, r.out, r.err], [0, "false\n", ""], `${mode}: ${pred.slice(0, 12)}`);
    }
  }
  for (
    const args of [
      ["1", "1", "--mode", "strict"],
      ["1", "1", "--mode"],
      ["3.1416", "\\pi", "--rel-tol", "1e-4", "--mode", "opencompass-v2"],
    ]
  ) {
    const r = await grade(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.err.trim().split("\n").length, 1, r.err);
    assert.match(r.err, /^grade: .*mode/);
  }
  assert.match(
    (await grade("1", "1", "--mode", "strict")).err,
    /--mode is "strict"; expected one of lenient, opencompass-v2/,
  );
});
