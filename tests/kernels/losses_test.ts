import assert from "node:assert/strict";
import { counterUniform, streamKey } from "../../kernels/counter_rng.ts";
import { type LossBatch, lossReference } from "../../kernels/loss_reference.ts";
import {
  buildDirectLossGraph,
  buildSelectionGraph,
  clipCovUniforms,
  LOSS_METRICS,
  LossConfigError,
  lossEntry,
  LOSSES,
  type LossOptions,
  miniBatchSelections,
  policyLoss,
  registerLoss,
  resolveLossOptions,
  SELECT_PREFIX,
  selectionNames,
} from "../../kernels/losses.ts";
import { decays, initWeights, Policy, policyTrainStep, trainerFor } from "../../kernels/policy.ts";
import { type Rollout, rolloutBatch, rolloutFeeds, sliceRows } from "../../kernels/rollout.ts";
import { compile, HostTensor, hostTensor, type Program } from "../../kernels/session.ts";
import { buildTrainStep } from "../../kernels/train_step.ts";
import {
  buildLossGraph,
  parameterShapes,
  type Qwen2Config,
  qwen2ConfigFromHF,
} from "../../kernels/transformer.ts";
import { assertAllClose } from "./_numeric.ts";

// ----- helpers -------------------------------------------------------------------------------

/** Every entry and variant, with options that make the selections non-trivial. */
const CASES: readonly [string, LossOptions][] = [
  ["grpo", {}],
  ["grpo", { clipLow: 0.1, clipHigh: 0.28, dualClipC: 2 }],
  ["grpo", { aggMode: "seq-mean-token-sum" }],
  ["grpo", { aggMode: "seq-mean-token-mean" }],
  ["grpo", { aggMode: "seq-mean-token-sum-norm" }],
  ["grpo", { aggMode: "seq-mean-token-sum-norm", aggNormLength: 40, refCoef: 0.2 }],
  ["entropy_bonus", {}],
  ["entropy_bonus", { entropyCoef: 0.5, refCoef: 0.3, aggMode: "seq-mean-token-mean" }],
  ["entropy_adv", {}],
  ["entropy_adv", { entropyAlpha: 2, kappa: 1.5 }],
  ["high_entropy_mask", {}],
  ["high_entropy_mask", { normalizer: "selected", entropyTopRatio: 0.35 }],
  ["clip_cov", {}],
  ["clip_cov", { clipCovLb: 0, clipCovUb: 5, clipCovRatio: 0.2 }],
  ["kl_cov", {}],
  ["kl_cov", { klCovRatio: 0.25, ppoKlCoef: 1 }],
  ["sent", {}],
  ["sent", { klCovRatio: 0.3 }],
  ["sent", { variant: "v2-literal", klCovRatio: 0.3 }],
  ["sent", { variant: "v1" }],
  ["sent", { variant: "v1", aggMode: "seq-mean-token-mean" }],
  ["sent", { variant: "paper", klCovRatio: 0.3 }],
  ["sent", { selection: "high", fraction: 0.5, klCovRatio: 0.5, hiMult: 3, loMult: 0.25 }],
  ["high_en", {}],
  ["high_en", { variant: "v2-literal", klCovRatio: 0.5 }],
];

const label = ([method, options]: readonly [string, LossOptions]) =>
  `${method} ${JSON.stringify(options)}`;

/** Seeded standard normals (Box–Muller on counter uniforms). */
function normals(seed: number, n: number): Float64Array {
  const key = streamKey(seed, "losses_test");
  return Float64Array.from({ length: n }, (_, i) => {
    const u1 = 1 - counterUniform(key, 2 * i);
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * counterUniform(key, 2 * i + 1));
  });
}

/**
 * A random micro-batch laid out like the model's: each row a prompt (mask 0), a response (mask 1)
 * and right padding (mask 0). Values are float32-representable.
 */
function randomBatch(seed: number, batch = 4, width = 9): LossBatch {
  const n = batch * width;
  const z = normals(seed, 7 * n);
  const col = (k: number) => Float64Array.from({ length: n }, (_, i) => Math.fround(z[k * n + i]));
  const [z0, z1, z2, z3, z4] = [0, 1, 2, 3, 4].map(col);
  const mask = new Float64Array(n);
  for (let r = 0; r < batch; r++) {
    const prompt = 1 + ((seed + r) % 3);
    const length = 2 + ((seed * 7 + r * 5) % (width - prompt - 1));
    for (let c = prompt; c < prompt + length; c++) mask[r * width + c] = 1;
  }
  const logp = z0.map((x) => Math.fround(-Math.abs(x) - 0.05));
  return {
    batch,
    width,
    logp,
    entropy: z1.map((x) => Math.fround(1.5 * Math.abs(x))),
    oldLogp: logp.map((x, i) => Math.fround(x + 0.7 * z2[i])),
    refLogp: logp.map((x, i) => Math.fround(x + 0.5 * z3[i])),
    oldEntropy: z4.map((x) => Math.fround(Math.abs(x))),
    advantages: Float64Array.from({ length: batch }, (_, r) => Math.fround(z[6 * n + r] * 1.3)),
    mask,
    uniforms: clipCovUniforms(streamKey(seed, "uniforms"), n),
    lossScale: 0.5,
  };
}

/** Host feeds of the direct graph. */
function feedsOf(program: Program, x: LossBatch): Record<string, HostTensor> {
  const dims = [x.batch, x.width];
  const t = (a: ArrayLike<number>) => hostTensor("float32", dims, Array.from(a));
  const all: Record<string, HostTensor> = {
    logp: t(x.logp),
    entropy: t(x.entropy),
    old_logp: t(x.oldLogp),
    ref_logp: t(x.refLogp),
    old_entropy: t(x.oldEntropy),
    advantages: hostTensor("float32", [x.batch], Array.from(x.advantages)),
    response_mask: t(x.mask),
    loss_scale: hostTensor("float32", [], [x.lossScale ?? 1]),
    clip_cov_uniforms: t(x.uniforms ?? new Float64Array(x.batch * x.width)),
  };
  return Object.fromEntries(program.inputNames.map((n) => [n, all[n]]));
}

interface Evaluated {
  loss: number;
  gradLogp: number[];
  gradEntropy: number[];
  metrics: Record<string, number>;
  select: Record<string, number[]>;
}

async function evaluate(program: Program, x: LossBatch, extra = {}): Promise<Evaluated> {
  const out = await program.run({ ...feedsOf(program, x), ...extra });
  const select = Object.fromEntries(
    out.names.filter((n) => n.startsWith(SELECT_PREFIX)).map((n) => [
      n.slice(SELECT_PREFIX.length),
      out.host(n).toNumbers(),
    ]),
  );
  return {
    loss: out.scalar("loss"),
    gradLogp: out.host("grad.logp").toNumbers(),
    gradEntropy: out.host("grad.entropy").toNumbers(),
    metrics: Object.fromEntries(LOSS_METRICS.map((m) => [m, out.scalar(m)])),
    select,
  };
}

async function withProgram<T>(
  method: string,
  options: LossOptions,
  use: (p: Program) => Promise<T>,
): Promise<T> {
  const program = await compile(buildDirectLossGraph(method, options), { threads: 1 });
  try {
    return await use(program);
  } finally {
    await program.release();
  }
}

function assertMatchesReference(
  got: Evaluated,
  want: ReturnType<typeof lossReference>,
  what: string,
) {
  assertAllClose([got.loss], [want.loss], `${what}: loss`, { atol: 2e-6, rtol: 1e-4 });
  assertAllClose(got.gradLogp, want.gradLogp, `${what}: dloss/dlogp`, { atol: 1e-6, rtol: 1e-4 });
  assertAllClose(got.gradEntropy, want.gradEntropy, `${what}: dloss/dentropy`, { atol: 1e-7 });
  for (const m of LOSS_METRICS) {
    assertAllClose([got.metrics[m]], [want.metrics[m]], `${what}: metric ${m}`, {
      atol: 2e-6,
      rtol: 1e-4,
    });
  }
  assert.deepEqual(Object.keys(got.select).sort(), Object.keys(want.select).sort(), what);
  for (const [name, mask] of Object.entries(want.select)) {
    const expected = typeof mask === "number" ? [mask] : Array.from(mask);
    assert.deepEqual(got.select[name], expected, `${what}: selection ${name}`);
  }
}

// ----- against the reference ---------------------------------------------------------------

Deno.test("every registered loss and variant matches the float64 reference: value, gradients, metrics, selections", async () => {
  assert.deepEqual(
    [...new Set(CASES.map(([m]) => m))].sort(),
    [...LOSSES.keys()].sort(),
    "every registered method has a case",
  );
  for (const c of CASES) {
    await withProgram(c[0], c[1], async (program) => {
      for (const seed of [1, 2, 3]) {
        const x = randomBatch(seed);
        assertMatchesReference(await evaluate(program, x), lossReference(c[0], c[1], x), label(c));
      }
    });
  }
});

Deno.test("the random micro-batches exercise clipping, dual clipping and every selection", async () => {
  // Guards the test above against trivial data: the figures it compares are not all zero.
  const grpo = [1, 2, 3].map((seed) => lossReference("grpo", {}, randomBatch(seed)).metrics);
  assert.ok(grpo.every((m) => m.pg_clipfrac > 0.2), "PPO clipping");
  assert.ok(grpo.some((m) => m.pg_clipfrac_lower > 0), "dual clipping");
  const x = randomBatch(1);
  const clip = lossReference("clip_cov", { clipCovLb: 0, clipCovUb: 5, clipCovRatio: 0.2 }, x);
  assert.ok(clip.metrics.frac_zeroed > 0.1, "Clip-Cov zeroes several tokens");
  const sent = lossReference("sent", { klCovRatio: 0.3 }, x);
  assert.ok(sent.metrics.frac_cov_hi > 0.05 && sent.metrics.frac_cov_lo > 0.05);
  const literal = lossReference("sent", { variant: "v2-literal", klCovRatio: 0.3 }, x);
  assert.notDeepEqual(literal.select.cov_hi, sent.select.cov_hi, "v2-literal picks other tokens");
  await Promise.resolve();
});

Deno.test("the losses ignore values at masked positions (NaN and infinities too) and give them zero gradient", async () => {
  const junk = [NaN, Infinity, -Infinity, 1e30, -7.5, 3];
  for (const c of CASES.filter(([, o]) => o.variant !== "v2-literal")) {
    await withProgram(c[0], c[1], async (program) => {
      const x = randomBatch(4);
      const spoil = (a: ArrayLike<number>, k: number) =>
        Float64Array.from(a, (v, i) => (x.mask[i] > 0 ? v : junk[(i + k) % junk.length]));
      const y: LossBatch = {
        ...x,
        logp: spoil(x.logp, 0),
        entropy: spoil(x.entropy, 1),
        oldLogp: spoil(x.oldLogp, 2),
        refLogp: spoil(x.refLogp, 3),
        oldEntropy: spoil(x.oldEntropy, 4),
        uniforms: spoil(x.uniforms!, 5),
      };
      const [a, b] = [await evaluate(program, x), await evaluate(program, y)];
      assert.deepEqual(b, a, label(c));
      for (let i = 0; i < x.mask.length; i++) {
        if (x.mask[i] === 0) assert.equal(Math.abs(a.gradLogp[i]) + Math.abs(a.gradEntropy[i]), 0);
      }
    });
  }
});

// ----- SENT's worked example --------------------------------------------------------------

/** SENT's worked example: one micro-batch of two responses, the second padded by two. */
function workedExample(): LossBatch {
  const logp = [-0.05, -1.2, -0.02, -0.6, -0.2, -0.9, -0.01, -0.3, 0, 0];
  const logRatio = [0, 0, 0, -0.2, 0, 0, 0, 0.1, 0, 0];
  return {
    batch: 2,
    width: 5,
    logp,
    entropy: [0.10, 2.00, 0.05, 0.70, 0.30, 1.50, 0.02, 0.40, 0, 0],
    oldLogp: logp.map((l, i) => l - logRatio[i]),
    refLogp: logp,
    oldEntropy: [0.10, 2.00, 0.05, 0.70, 0.30, 1.50, 0.02, 0.40, 0, 0],
    advantages: [1, -1],
    mask: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
  };
}

Deno.test("sent and grpo give SENT's worked example: −0.210445 and −0.214195, with its selections", async () => {
  const x = workedExample();
  const sent = await withProgram("sent", {}, (p) => evaluate(p, x));
  assertAllClose([sent.loss, sent.metrics.policy_loss], [-0.210445, -0.210445], "SENT", {
    atol: 1e-6,
  });
  // L_low = {(1,1),(0,2),(0,0),(0,4),(1,2),(0,3)}; S_hi = {(1,2)}; S_lo = {(0,3)}.
  assert.deepEqual(sent.select.entropy_set, [1, 0, 1, 1, 1, 0, 1, 1, 0, 0]);
  assert.deepEqual(sent.select.cov_hi, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
  assert.deepEqual(sent.select.cov_lo, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  assert.equal(sent.metrics.pg_clipfrac, 0);
  const grpo = await withProgram("grpo", {}, (p) => evaluate(p, x));
  assertAllClose([grpo.loss], [-0.214195], "GRPO", { atol: 1e-6 });
  assertAllClose([lossReference("sent", {}, x).loss], [-0.210445], "SENT reference", {
    atol: 1e-6,
  });
  assertAllClose([lossReference("grpo", {}, x).loss], [-0.214195], "GRPO reference", {
    atol: 1e-6,
  });
});

Deno.test("sent v2-literal takes its covariance from the rows the reference code gathers", async () => {
  // Valid index p reads A_tok[m[⌊p/5⌋], p mod 5]: row 0 has ≥ 2 tokens, so always row 1. With
  // log-prob 0 at the padding, the set's scrambled (A, ℓ) are (−1,−0.9) (−1,−0.3) (0,0) (0,0)
  // (−1,−0.01) (−1,−0.3): the top covariance is token (0,0), the bottom one (1,1).
  const x = workedExample();
  const got = await withProgram("sent", { variant: "v2-literal" }, (p) => evaluate(p, x));
  assert.deepEqual(got.select.entropy_set, [1, 0, 1, 1, 1, 0, 1, 1, 0, 0]);
  assert.deepEqual(got.select.cov_hi, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(got.select.cov_lo, [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
  // Both have log r = 0, so the penalty vanishes and the loss is the plain −A·r mean.
  assertAllClose([got.loss], [-0.214195], "v2-literal", { atol: 1e-6 });
});

// ----- selections ----------------------------------------------------------------------------

function constantBatch(batch: number, width: number, mask: number[]): LossBatch {
  const n = batch * width;
  const fill = (v: number) => new Float64Array(n).fill(v);
  return {
    batch,
    width,
    logp: fill(-1),
    entropy: fill(0.5),
    oldLogp: fill(-1.1),
    refLogp: fill(-1),
    oldEntropy: fill(0.5),
    advantages: new Float64Array(batch).fill(1),
    mask,
    uniforms: fill(0.25),
  };
}

Deno.test("selections break ties towards the lower flat index; the 80/20 mask keeps every tie at its threshold", async () => {
  // Two rows of four, the first position of each a prompt: valid flat indices 1,2,3,5,6,7.
  const x = constantBatch(2, 4, [0, 1, 1, 1, 0, 1, 1, 1]);
  const sent = await withProgram("sent", {}, (p) => evaluate(p, x));
  // k_low = floor(0.8·6) = 4 of six equal entropies; all covariances 0: one token each way.
  assert.deepEqual(sent.select.entropy_set, [0, 1, 1, 1, 0, 1, 0, 0]);
  assert.deepEqual(sent.select.cov_hi, [0, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(sent.select.cov_lo, [0, 1, 0, 0, 0, 0, 0, 0]);
  const high = await withProgram("high_en", {}, (p) => evaluate(p, x));
  assert.deepEqual(high.select.entropy_set, [0, 1, 0, 0, 0, 0, 0, 0]);
  const kl = await withProgram("kl_cov", { klCovRatio: 0.4 }, (p) => evaluate(p, x));
  assert.deepEqual(kl.select.cov_hi, [0, 1, 1, 0, 0, 0, 0, 0]);
  const clip = await withProgram(
    "clip_cov",
    { clipCovLb: -1, clipCovRatio: 0.5 },
    (p) => evaluate(p, x),
  );
  assert.deepEqual(clip.select.zeroed, [0, 1, 1, 1, 0, 0, 0, 0], "equal uniforms: lowest index");
  const mask = await withProgram("high_entropy_mask", {}, (p) => evaluate(p, x));
  assert.deepEqual(mask.select.entropy_set, [0, 1, 1, 1, 0, 1, 1, 1], "H ≥ τ holds for all ties");
  for (
    const [got, method, options] of [
      [sent, "sent", {}],
      [high, "high_en", {}],
      [kl, "kl_cov", { klCovRatio: 0.4 }],
      [clip, "clip_cov", { clipCovLb: -1, clipCovRatio: 0.5 }],
      [mask, "high_entropy_mask", {}],
    ] as const
  ) {
    assertMatchesReference(got, lossReference(method, options, x), `ties: ${method}`);
  }
});

Deno.test("k floors to one: one valid token still gets the entropy set and both covariance picks", async () => {
  const one = constantBatch(2, 3, [0, 0, 0, 0, 1, 0]);
  const sent = await withProgram("sent", { klCovRatio: 0.0002 }, (p) => evaluate(p, one));
  assert.deepEqual(sent.select.entropy_set, [0, 0, 0, 0, 1, 0], "max(floor(0.8·1), 1) = 1");
  assert.deepEqual(sent.select.cov_hi, [0, 0, 0, 0, 1, 0]);
  assert.deepEqual(sent.select.cov_lo, [0, 0, 0, 0, 1, 0]);
  assertMatchesReference(sent, lossReference("sent", {}, one), "one token");
  // Three valid tokens: floor(0.8·3) = 2 lowest entropies; k = 1 of each covariance end.
  const three: LossBatch = { ...constantBatch(1, 4, [1, 1, 1, 0]), entropy: [0.3, 0.1, 0.2, 0] };
  const got = await withProgram("sent", {}, (p) => evaluate(p, three));
  assert.deepEqual(got.select.entropy_set, [0, 1, 1, 0]);
  assert.equal(got.select.cov_hi.reduce((s, v) => s + v, 0), 1);
});

Deno.test("rows that are all padding are never selected, and an all-padding micro-batch adds exactly 0", async () => {
  for (const c of CASES) {
    await withProgram(c[0], c[1], async (program) => {
      const x = randomBatch(5);
      const width = x.width;
      const mask = Float64Array.from(x.mask, (m, i) => (Math.floor(i / width) === 2 ? 0 : m));
      const padded = { ...x, mask };
      const got = await evaluate(program, padded);
      assertMatchesReference(got, lossReference(c[0], c[1], padded), `${label(c)} row 2 padding`);
      for (const sel of Object.values(got.select).filter((s) => s.length > 1)) {
        assert.deepEqual(sel.slice(2 * width, 3 * width), new Array(width).fill(0), label(c));
      }
      const empty = await evaluate(program, { ...x, mask: new Float64Array(mask.length) });
      assert.equal(empty.loss, 0, label(c));
      assert.ok(empty.gradLogp.every((g) => g === 0) && empty.gradEntropy.every((g) => g === 0));
      for (const m of LOSS_METRICS) assert.ok(empty.metrics[m] === 0, `${label(c)}: ${m}`);
    });
  }
});

// ----- mini scope ------------------------------------------------------------------------------

/** The rows of two batches stacked, the narrower one right-padded with mask 0. */
function stacked(a: LossBatch, b: LossBatch): LossBatch {
  const width = Math.max(a.width, b.width);
  const rows = a.batch + b.batch;
  const field = (pick: (x: LossBatch) => ArrayLike<number>) => {
    const out = new Float64Array(rows * width);
    let row = 0;
    for (const x of [a, b]) {
      for (let r = 0; r < x.batch; r++, row++) {
        for (let c = 0; c < x.width; c++) out[row * width + c] = pick(x)[r * x.width + c];
      }
    }
    return out;
  };
  return {
    batch: rows,
    width,
    logp: field((x) => x.logp),
    entropy: field((x) => x.entropy),
    oldLogp: field((x) => x.oldLogp),
    refLogp: field((x) => x.refLogp),
    oldEntropy: field((x) => x.oldEntropy),
    mask: field((x) => x.mask),
    uniforms: field((x) => x.uniforms!),
    advantages: Float64Array.from([...Array.from(a.advantages), ...Array.from(b.advantages)]),
    lossScale: 1,
  };
}

/** A batch's rows restricted to the columns of a narrower width. */
function cropped(x: LossBatch, rows: [number, number], width: number): number[] {
  const out: number[] = [];
  for (let r = rows[0]; r < rows[1]; r++) {
    for (let c = 0; c < width; c++) out.push(x.mask[r * x.width + c]);
  }
  return out;
}

Deno.test("mini scope: selections over the whole mini-batch make the micro-batch losses add up to its loss", async () => {
  const micro = [{ ...randomBatch(6, 3, 7), lossScale: 1 }, {
    ...randomBatch(7, 2, 9),
    lossScale: 1,
  }];
  const whole = stacked(micro[0], micro[1]);
  const cases: [string, LossOptions][] = [
    ["grpo", { aggMode: "seq-mean-token-mean" }],
    ["high_entropy_mask", { normalizer: "selected" }],
    ["clip_cov", { clipCovLb: 0, clipCovRatio: 0.2 }],
    ["kl_cov", { klCovRatio: 0.2 }],
    ["sent", { klCovRatio: 0.3 }],
    ["sent", { variant: "v1" }],
  ];
  for (const [method, base] of cases) {
    const options: LossOptions = { ...base, statScope: "mini" };
    const selection = await compile(buildSelectionGraph(method, options), { threads: 1 });
    const feeds = await miniBatchSelections(
      selection,
      micro.map((m) => ({
        batch: m.batch,
        width: m.width,
        logp: Float32Array.from(m.logp),
        entropy: Float32Array.from(m.entropy),
        oldLogp: Float32Array.from(m.oldLogp),
        advantages: Float32Array.from(m.advantages),
        responseMask: Float32Array.from(m.mask),
        uniforms: Float32Array.from(m.uniforms!),
      })),
    );
    await selection.release();
    const names = selectionNames(method, options);
    assert.deepEqual(
      Object.keys(feeds[0]).sort(),
      [...names.tokens, ...names.scalars].map((n) => SELECT_PREFIX + n).sort(),
    );
    const parts = await withProgram(method, options, async (program) => {
      const out: Evaluated[] = [];
      for (const [i, m] of micro.entries()) out.push(await evaluate(program, m, feeds[i]));
      return out;
    });
    const want = lossReference(method, base, whole);
    const what = `mini ${method} ${JSON.stringify(base)}`;
    assertAllClose([parts[0].loss + parts[1].loss], [want.loss], `${what}: loss`, { atol: 2e-6 });
    assertAllClose(
      [...parts[0].gradLogp, ...parts[1].gradLogp],
      [
        ...cropped({ ...whole, mask: want.gradLogp }, [0, 3], 7),
        ...cropped({ ...whole, mask: want.gradLogp }, [3, 5], 9),
      ],
      `${what}: dloss/dlogp`,
      { atol: 1e-6 },
    );
    for (const name of names.tokens) {
      const mask = want.select[name] as Float64Array;
      assert.deepEqual(
        [
          ...feeds[0][SELECT_PREFIX + name].toNumbers(),
          ...feeds[1][SELECT_PREFIX + name].toNumbers(),
        ],
        [...cropped({ ...whole, mask }, [0, 3], 7), ...cropped({ ...whole, mask }, [3, 5], 9)],
        `${what}: ${name}`,
      );
    }
  }
});

// ----- registry and options --------------------------------------------------------------------

function assertConfigError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof LossConfigError && pattern.test(e.message));
}

Deno.test("the registry refuses duplicate and malformed names, and lookups name the known methods", () => {
  assert.deepEqual([...LOSSES.keys()].sort(), [
    "clip_cov",
    "entropy_adv",
    "entropy_bonus",
    "grpo",
    "high_en",
    "high_entropy_mask",
    "kl_cov",
    "sent",
  ]);
  assertConfigError(() => registerLoss(lossEntry("grpo")), /loss named grpo is already registered/);
  assertConfigError(() => registerLoss({ ...lossEntry("grpo"), name: "Grpo2" }), /lower case/);
  assertConfigError(
    () => registerLoss({ ...lossEntry("grpo"), name: "grpo_beta", options: { beta: 1 } as never }),
    /loss grpo_beta: option beta is unknown/,
  );
  assertConfigError(
    () => registerLoss({ ...lossEntry("grpo"), name: "grpo_wide", options: { clipLow: 2 } }),
    /default of option clipLow is 2; expected a number in \[0, 1\]/,
  );
  assert.ok(!LOSSES.has("grpo_beta") && !LOSSES.has("grpo_wide"));
  assertConfigError(() => lossEntry("ppo"), /unknown loss method "ppo"; known: grpo, .*sent/);
  assertConfigError(() => lossEntry("GRPO"), /unknown loss method "GRPO" \(did you mean grpo\?\)/);
  assertConfigError(() => buildDirectLossGraph("Sent"), /did you mean sent/);
});

Deno.test("options: unknown, inapplicable, wrong-case, mistyped and out-of-range ones are errors naming them", () => {
  const bad: [string, unknown, RegExp][] = [
    ["grpo", { clipRatio: 0.2 }, /option clipRatio is unknown; its options are .*clipLow/],
    ["grpo", { klCovRatio: 0.1 }, /option klCovRatio does not apply to it/],
    ["grpo", { cliplow: 0.2 }, /option cliplow is unknown \(did you mean clipLow\?\)/],
    ["grpo", { clipLow: "0.2" }, /option clipLow is "0.2"; expected a number in \[0, 1\]/],
    ["grpo", { clipLow: 1.5 }, /option clipLow is 1.5; expected a number in \[0, 1\]/],
    ["grpo", { dualClipC: 1 }, /option dualClipC is 1; expected a number > 1/],
    [
      "grpo",
      { aggMode: "token_mean" },
      /option aggMode is "token_mean"; expected one of "token-mean"/,
    ],
    [
      "grpo",
      { statScope: "batch" },
      /option statScope is "batch"; expected one of "micro", "mini"/,
    ],
    [
      "sent",
      { variant: "v3" },
      /option variant is "v3"; expected one of "v2", "v2-literal", "v1", "paper"/,
    ],
    ["sent", { klCovRatio: 0 }, /option klCovRatio is 0; expected a number in \(0, 1\]/],
    ["sent", { fraction: NaN }, /option fraction is null; expected a number in \(0, 1\]/],
    ["entropy_adv", { kappa: 1 }, /option kappa is 1; expected a number > 1/],
    [
      "clip_cov",
      { clipCovLb: 5, clipCovUb: 1 },
      /clipCovUb \(1\) must be greater than clipCovLb \(5\)/,
    ],
    ["grpo", { aggNormLength: 2.5 }, /aggNormLength is 2.5; expected a non-negative integer/],
    ["grpo", [1], /options must be an object/],
  ];
  for (const [method, options, pattern] of bad) {
    assertConfigError(() => resolveLossOptions(method, options), pattern);
  }
  const o = resolveLossOptions("high_en", { variant: "v1" });
  assert.deepEqual([o.variant, o.selection, o.fraction, o.ppoKlCoef, o.refCoef], [
    "v1",
    "high",
    0.2,
    0.1,
    0.001,
  ]);
  assert.equal(resolveLossOptions("entropy_bonus").entropyCoef, 0.001);
  assert.equal(resolveLossOptions("grpo").entropyCoef, 0);
});

Deno.test("clipCovUniforms() is a pure function of the stream key and counter offset", () => {
  const key = streamKey(3, "clip_cov", 0);
  const a = clipCovUniforms(key, 12);
  assert.deepEqual(clipCovUniforms(key, 12), a);
  assert.deepEqual(clipCovUniforms(key, 4, 8), a.subarray(8));
  assert.ok(a.every((u) => u >= 0 && u < 1));
  assert.notDeepEqual(clipCovUniforms(streamKey(4, "clip_cov", 0), 12), a);
});

Deno.test("the selection graph's inputs and outputs follow selectionNames()", () => {
  const g = buildSelectionGraph("clip_cov");
  assert.deepEqual(g.inputs.map((v) => v.name), [
    "logp",
    "entropy",
    "old_logp",
    "advantages",
    "response_mask",
    "clip_cov_uniforms",
  ]);
  assert.deepEqual(g.outputs.map((v) => v.name), ["select.zeroed", "select.den_all"]);
  const v1 = selectionNames("sent", { variant: "v1" });
  assert.deepEqual(v1, { tokens: ["entropy_set"], scalars: ["den_all", "den_policy"] });
  const mini = buildDirectLossGraph("sent", { statScope: "mini" });
  assert.deepEqual(
    mini.inputs.map((v) => v.name).filter((n) => n.startsWith(SELECT_PREFIX)),
    ["select.entropy_set", "select.cov_hi", "select.cov_lo", "select.den_all"],
  );
  assert.ok(!mini.inputs.some((v) => v.name === "clip_cov_uniforms"));
});

// ----- inside a real Qwen2 train step ------------------------------------------------------------

const QWEN2: Qwen2Config = qwen2ConfigFromHF({
  vocab_size: 20,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  tie_word_embeddings: true,
});
const ADVANTAGES = [1.2, -0.8, 0.5, -0.9];

/** Four prompts with completions (EOS = 2), scored by the policy: on-policy old log-probs. */
async function scoredRollout(policy: Policy) {
  const rollout = rolloutBatch(
    [[1, 3, 4], [1, 5], [1, 6, 7, 8], [1, 9]],
    [[10, 11, 12, 2], [13, 14, 2], [15, 2], [16, 17, 18, 19, 2]],
    { padId: 0 },
  );
  const scores = await policy.score(rollout.batch);
  return { rollout, ...scores };
}

/** Feeds of the policy-loss inputs of rows [start, end) of a scored rollout. */
function lossFeeds(
  scored: Awaited<ReturnType<typeof scoredRollout>>,
  rows: [number, number],
  lossScale: number,
): Record<string, HostTensor> {
  const part: Rollout = sliceRows(scored.rollout, rows[0], rows[1]);
  const B = rows[1] - rows[0];
  const W = scored.rollout.batch.length - 1;
  const take = (a: Float32Array) => a.subarray(rows[0] * W, rows[1] * W);
  const perToken = (a: Float32Array) => new HostTensor("float32", [B, W], a);
  return {
    ...rolloutFeeds(part),
    old_logp: perToken(take(scored.logprobs)),
    ref_logp: perToken(take(scored.logprobs).map((l) => l - 0.05)),
    old_entropy: perToken(take(scored.entropy)),
    advantages: new HostTensor("float32", [B], Float32Array.from(ADVANTAGES.slice(...rows))),
    loss_scale: new HostTensor("float32", [], Float32Array.of(lossScale)),
  };
}

/** The reference over rows of a scored rollout, with the score graph's values as current. */
function scoredReference(
  scored: Awaited<ReturnType<typeof scoredRollout>>,
  method: string,
  options: LossOptions,
) {
  return lossReference(method, options, scoredReferenceBatch(scored));
}

function qwen2Step(method: string, options: LossOptions) {
  const graph = buildLossGraph(QWEN2, policyLoss(method, options), { name: `qwen2_${method}` });
  const params = [...parameterShapes(QWEN2).keys()].map((name) => ({ name, decay: decays(name) }));
  return buildTrainStep(graph, { params, metrics: LOSS_METRICS, weightDecay: 0 });
}

Deno.test("policyLoss() trains inside a real tiny Qwen2 step and returns every metric of that step", async () => {
  const policy = Policy.create(QWEN2, initWeights(QWEN2, { seed: 3 }), { threads: 2 });
  const scored = await scoredRollout(policy);
  const options: LossOptions = { klCovRatio: 0.3 };

  const plain = policyTrainStep(QWEN2, policyLoss("sent", options), { weightDecay: 0 });
  assert.deepEqual(plain.data, [
    "input_ids",
    "attention_mask",
    "position_ids",
    "old_logp",
    "ref_logp",
    "old_entropy",
    "advantages",
    "response_mask",
    "loss_scale",
  ]);
  const step = qwen2Step("sent", options);
  assert.deepEqual(step.metrics, ["loss", "grad_norm", "update_applied", ...LOSS_METRICS]);
  const trainer = await trainerFor(policy, step);
  const got = await trainer.step(lossFeeds(scored, [0, 4], 1), { lr: 1e-3 });
  const want = scoredReference(scored, "sent", options);
  assert.ok(got.applied && Number.isFinite(got.gradNorm) && got.gradNorm > 0);
  assertAllClose([got.loss], [want.loss], "loss of the step", { atol: 1e-5 });
  for (const m of LOSS_METRICS) {
    assertAllClose([got.values[m]], [want.metrics[m]], `metric ${m}`, { atol: 1e-5, rtol: 1e-4 });
  }
  const n = scored.rollout.responseMask.reduce((s, v) => s + v, 0);
  assert.equal(got.values.valid_tokens, n);
  assert.equal(got.values.frac_entropy_set, Math.fround(Math.floor(0.8 * n) / n));
  assert.ok(got.values.ppo_kl < 1e-5, "on-policy: |log r| ≈ 0");
  assertAllClose([got.values.ref_kl], [Math.exp(-0.05) + 0.05 - 1], "k3 at d = −0.05");
  // A second step moves the policy away from old_logp: the |log r| penalty wakes up.
  const second = await trainer.step(lossFeeds(scored, [0, 4], 1), { lr: 1e-3 });
  assert.ok(second.values.ppo_kl > 1e-4 && second.loss < got.loss);
  await trainer.release();
  await policy.release();
});

Deno.test("mini scope in real train steps: pre-pass selections make the accumulated micro-batch losses the mini-batch loss", async () => {
  const policy = Policy.create(QWEN2, initWeights(QWEN2, { seed: 4 }), { threads: 2 });
  const scored = await scoredRollout(policy);
  for (
    const [method, base] of [
      ["sent", { klCovRatio: 0.3 }],
      ["clip_cov", { clipCovLb: -5, clipCovRatio: 0.25 }],
    ] as const
  ) {
    const options: LossOptions = { ...base, statScope: "mini" };
    const trainer = await trainerFor(policy, qwen2Step(method, options), {
      compile: ["accumulate", "apply", "zeros"],
    });
    const W = scored.rollout.batch.length - 1;
    const uniforms = clipCovUniforms(streamKey(9, "clip_cov"), 4 * W);
    const ranges: [number, number][] = [[0, 2], [2, 4]];
    const selection = await compile(buildSelectionGraph(method, options), { threads: 2 });
    const select = await miniBatchSelections(
      selection,
      ranges.map(([a, b]) => ({
        batch: b - a,
        width: W,
        logp: scored.logprobs.subarray(a * W, b * W),
        entropy: scored.entropy.subarray(a * W, b * W),
        oldLogp: scored.logprobs.subarray(a * W, b * W),
        advantages: Float32Array.from(ADVANTAGES.slice(a, b)),
        responseMask: scored.rollout.responseMask.subarray(a * W, b * W),
        uniforms: uniforms.subarray(a * W, b * W),
      })),
    );
    await selection.release();
    let total = 0;
    for (const [i, rows] of ranges.entries()) {
      total += (await trainer.accumulate({ ...lossFeeds(scored, rows, 1), ...select[i] })).loss;
    }
    assert.ok((await trainer.apply({ lr: 1e-3 })).applied);
    const want = lossReference(method, base, {
      ...scoredReferenceBatch(scored),
      uniforms,
    });
    assertAllClose([total], [want.loss], `${method}: Σ micro-batch losses`, { atol: 1e-5 });
    await trainer.release();
  }
  await policy.release();
});

function scoredReferenceBatch(scored: Awaited<ReturnType<typeof scoredRollout>>): LossBatch {
  const { batch: B, length: T } = scored.rollout.batch;
  return {
    batch: B,
    width: T - 1,
    logp: scored.logprobs,
    entropy: scored.entropy,
    oldLogp: scored.logprobs,
    refLogp: scored.logprobs.map((l) => l - 0.05),
    oldEntropy: scored.entropy,
    advantages: ADVANTAGES,
    mask: scored.rollout.responseMask,
  };
}
