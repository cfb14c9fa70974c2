import assert from "node:assert/strict";
import {
  buildDecoderGraph,
  ConfigError,
  forwardFlops,
  parameterCount,
  parameterShapes,
  type Qwen2Config,
  qwen2ConfigFromHF,
  qwen2ConfigToHF,
  tinyPolicyConfig,
} from "../../kernels/transformer.ts";
import { initWeights, padBatch, Policy } from "../../kernels/policy.ts";

/** A tiny grouped-query config: 4 query heads over 2 key/value heads, head size 4. */
const HF_TINY = {
  model_type: "qwen2",
  vocab_size: 11,
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rope_theta: 10000,
  rms_norm_eps: 1e-6,
  max_position_embeddings: 64,
};

// ----- config -------------------------------------------------------------------------------------

Deno.test("qwen2ConfigFromHF() reads the architecture keys and HF's defaults", () => {
  const c = qwen2ConfigFromHF({
    ...HF_TINY,
    num_key_value_heads: undefined,
    rope_theta: undefined,
  });
  assert.equal(c.hiddenSize, 16);
  assert.equal(c.headDim, 4);
  assert.equal(c.numKvHeads, 4, "a missing num_key_value_heads means multi-head attention");
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.tieWordEmbeddings, false);
});

Deno.test("qwen2ConfigFromHF() errors name the key, the value and what was expected", () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ ...HF_TINY, hidden_size: undefined }, "hidden_size", /is missing; expected a positive/],
    [{ ...HF_TINY, num_hidden_layers: 2.5 }, "num_hidden_layers", /is 2\.5; expected a positive/],
    [{ ...HF_TINY, num_attention_heads: 3 }, "hidden_size", /\(16\) must be divisible by.*\(3\)/],
    [{ ...HF_TINY, num_key_value_heads: 3 }, "num_key_value_heads", /\(3\) must divide/],
    [{ ...HF_TINY, rope_scaling: { type: "yarn" } }, "rope_scaling", /only null/],
    [{ ...HF_TINY, model_type: "llama" }, "model_type", /is "llama"; only "qwen2"/],
    [{ ...HF_TINY, tie_word_embeddings: "yes" }, "tie_word_embeddings", /true or false/],
  ];
  for (const [json, key, message] of cases) {
    assert.throws(() => qwen2ConfigFromHF(json), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.key, key);
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("qwen2ConfigToHF() writes a config that reads back to the same architecture", () => {
  const c = qwen2ConfigFromHF(HF_TINY);
  const hf = qwen2ConfigToHF(c, { eos_token_id: 2 });
  assert.deepEqual(hf.architectures, ["Qwen2ForCausalLM"]);
  assert.equal(hf.eos_token_id, 2);
  assert.deepEqual(qwen2ConfigFromHF(JSON.parse(JSON.stringify(hf))), c);
});

Deno.test("parameterShapes() lists HF names in [out, in] layout, lm_head only when untied", () => {
  const c = qwen2ConfigFromHF(HF_TINY);
  const shapes = parameterShapes(c);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.q_proj.weight"), [16, 16]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.k_proj.weight"), [8, 16]);
  assert.deepEqual(shapes.get("model.layers.1.self_attn.k_proj.bias"), [8]);
  assert.equal(shapes.has("model.layers.0.self_attn.o_proj.bias"), false);
  assert.deepEqual(shapes.get("model.layers.0.mlp.down_proj.weight"), [16, 24]);
  assert.deepEqual(shapes.get("lm_head.weight"), [11, 16]);
  assert.equal(shapes.size, 1 + 2 * 12 + 2);
  const tiny = tinyPolicyConfig(28);
  assert.equal(parameterShapes(tiny).has("lm_head.weight"), false);
  assert.ok(parameterCount(tiny) > 1.5e6 && parameterCount(tiny) < 2.5e6);
});

Deno.test("forwardFlops() counts 2 FLOPs per weight per token plus attention and logits", () => {
  const c = qwen2ConfigFromHF(HF_TINY);
  const perLayer = 16 * 16 * 2 + 16 * 8 * 2 + 3 * 16 * 24;
  const attention = 2 * 16 * 10; // q·k and p·v over 10 keys, 16 = heads × head size
  const expected = 2 * 2 * (perLayer + attention) + 2 * 16 * 11;
  assert.equal(forwardFlops(c, { tokens: 1, keys: 10, logitRows: 1 }), expected);
});

Deno.test("buildDecoderGraph() names inputs and outputs per cache mode", () => {
  const c = qwen2ConfigFromHF(HF_TINY);
  const names = (g: { inputs: readonly { name: string }[] }) => g.inputs.map((v) => v.name);
  const concat = buildDecoderGraph(c, { cache: "concat", logits: "all", indexDtype: "int64" });
  const slots = buildDecoderGraph(c, { cache: "slots", logits: "last" });
  assert.deepEqual(names(concat).slice(0, 5), [
    "input_ids",
    "attention_mask",
    "position_ids",
    "past_key_values.0.key",
    "past_key_values.0.value",
  ]);
  assert.deepEqual(concat.outputs.map((v) => v.name), [
    "logits",
    "present.0.key",
    "present.0.value",
    "present.1.key",
    "present.1.value",
  ]);
  assert.deepEqual(concat.inputs.slice(0, 3).map((v) => v.dtype), ["int64", "int64", "int64"]);
  assert.deepEqual(slots.inputs.slice(0, 3).map((v) => v.dtype), ["int32", "int32", "int32"]);
  assert.deepEqual(slots.outputs.map((v) => v.name).slice(1, 3), ["new.0.key", "new.0.value"]);
  assert.ok(names(slots).includes("cache.1.value"));
  assert.ok(names(slots).includes("model.layers.1.mlp.up_proj.weight"));
});

// ----- numerics against a plain TypeScript Qwen2 -------------------------------------------------

/** Reference Qwen2 forward in float64 loops (HF semantics: rotate_half RoPE, repeat_kv GQA). */
function referenceLogits(
  c: Qwen2Config,
  w: ReadonlyMap<string, Float32Array>,
  ids: readonly number[],
): Float64Array[] {
  const { hiddenSize: D, numHeads: H, numKvHeads: K, headDim: E, intermediateSize: F } = c;
  const mat = (name: string, x: Float64Array, out: number, bias?: string) => {
    const W = w.get(name)!;
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = bias ? w.get(bias)![o] : 0;
      for (let i = 0; i < x.length; i++) s += W[o * x.length + i] * x[i];
      y[o] = s;
    }
    return y;
  };
  const norm = (x: Float64Array, name: string) => {
    const g = w.get(name)!;
    const ms = x.reduce((a, v) => a + v * v, 0) / x.length;
    return x.map((v, i) => (v / Math.sqrt(ms + c.rmsNormEps)) * g[i]);
  };
  const rope = (x: Float64Array, heads: number, pos: number) => {
    const out = new Float64Array(x.length);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < E / 2; i++) {
        const a = pos / c.ropeTheta ** ((2 * i) / E);
        const x1 = x[h * E + i];
        const x2 = x[h * E + i + E / 2];
        out[h * E + i] = x1 * Math.cos(a) - x2 * Math.sin(a);
        out[h * E + i + E / 2] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
    }
    return out;
  };
  const emb = w.get("model.embed_tokens.weight")!;
  let xs = ids.map((id) => Float64Array.from(emb.subarray(id * D, (id + 1) * D)));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    const hs = xs.map((x) => norm(x, `${p}.input_layernorm.weight`));
    const proj = (n: string, out: number) =>
      hs.map((h) => mat(`${p}.self_attn.${n}.weight`, h, out, `${p}.self_attn.${n}.bias`));
    const q = proj("q_proj", H * E).map((v, t) => rope(v, H, t));
    const k = proj("k_proj", K * E).map((v, t) => rope(v, K, t));
    const v = proj("v_proj", K * E);
    const attn = q.map((qt, t) => {
      const o = new Float64Array(H * E);
      for (let h = 0; h < H; h++) {
        const kv = Math.floor(h / (H / K));
        const s = Array.from({ length: t + 1 }, (_, j) => {
          let dot = 0;
          for (let e = 0; e < E; e++) dot += qt[h * E + e] * k[j][kv * E + e];
          return dot / Math.sqrt(E);
        });
        const m = Math.max(...s);
        const p = s.map((x) => Math.exp(x - m));
        const z = p.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= t; j++) {
          for (let e = 0; e < E; e++) o[h * E + e] += (p[j] / z) * v[j][kv * E + e];
        }
      }
      return mat(`${p}.self_attn.o_proj.weight`, o, D);
    });
    xs = xs.map((x, t) => x.map((xi, i) => xi + attn[t][i]));
    xs = xs.map((x) => {
      const h = norm(x, `${p}.post_attention_layernorm.weight`);
      const g = mat(`${p}.mlp.gate_proj.weight`, h, F);
      const u = mat(`${p}.mlp.up_proj.weight`, h, F);
      const act = g.map((gi, i) => (gi / (1 + Math.exp(-gi))) * u[i]);
      const down = mat(`${p}.mlp.down_proj.weight`, act, D);
      return x.map((xi, i) => xi + down[i]);
    });
  }
  const head = c.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  return xs.map((x) => mat(head, norm(x, "model.norm.weight"), c.vocabSize));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const SEQS = [[1, 4, 9, 3, 7, 10, 2], [1, 5, 5], [1, 8, 6, 3, 2]];

Deno.test("the forward graph matches a plain float64 Qwen2 within 1e-4, left-padded rows too", async () => {
  const config = qwen2ConfigFromHF(HF_TINY);
  const weights = initWeights(config, { seed: 11, std: 0.3 });
  const policy = Policy.create(config, weights, { threads: 1 });
  const batch = padBatch(SEQS, { padId: 0 });
  const logits = await policy.forward(batch);
  const V = config.vocabSize;
  SEQS.forEach((seq, r) => {
    const ref = referenceLogits(config, weights, seq);
    const pad = batch.length - seq.length;
    ref.forEach((row, t) => {
      const at = (r * batch.length + pad + t) * V;
      const d = maxDiff(logits.subarray(at, at + V), row);
      assert.ok(d < 1e-4, `row ${r} position ${t}: max |Δlogit| = ${d}`);
    });
  });
  await policy.release();
});

Deno.test("decode with a KV cache (slots and concat) gives the full forward's logits within 1e-4", async () => {
  // Tolerance 1e-4 on logits of magnitude ~3; measured differences are ~1e-6 (float32 sums in a
  // different order).
  const config = qwen2ConfigFromHF({ ...HF_TINY, tie_word_embeddings: true });
  const policy = Policy.create(config, initWeights(config, { seed: 5, std: 0.3 }));
  const V = config.vocabSize;
  const { numLayers: L, numKvHeads: K, headDim: E } = config;
  const prompts = SEQS.map((s) => s.slice(0, 3));
  const prompt = padBatch(prompts, { padId: 0 });
  const P = prompt.length;
  const full = padBatch(SEQS.map((s) => [...s.slice(0, 3), 4, 6, 8]), { padId: 0 });
  const reference = await policy.forward(full); // [3, P + 3, V]
  const refRow = (r: number, t: number) => {
    const at = (r * full.length + t) * V;
    return reference.subarray(at, at + V);
  };

  // Slots: a host cache with room for 3 new tokens.
  const pre = await policy.prefill(prompt);
  for (let r = 0; r < 3; r++) {
    assert.ok(maxDiff(pre.logits.subarray(r * V, (r + 1) * V), refRow(r, P - 1)) < 1e-4);
  }
  const C = P + 3;
  const keys = Array.from({ length: L }, () => new Float32Array(3 * K * C * E));
  const values = Array.from({ length: L }, () => new Float32Array(3 * K * C * E));
  const copy = (dst: Float32Array, src: Float32Array, n: number, at: number) => {
    for (let rh = 0; rh < 3 * K; rh++) {
      dst.set(src.subarray(rh * n * E, (rh + 1) * n * E), (rh * C + at) * E);
    }
  };
  for (let l = 0; l < L; l++) {
    copy(keys[l], pre.kv.keys[l], P, 0);
    copy(values[l], pre.kv.values[l], P, 0);
  }
  const slotMask = new Int32Array(3 * C);
  for (let r = 0; r < 3; r++) slotMask.set(prompt.mask.subarray(r * P, (r + 1) * P), r * C);
  const lens = prompts.map((p) => p.length);
  for (const [k, token] of [4, 6, 8].entries()) {
    const out = await policy.decode({
      batch: 3,
      slots: C,
      ids: new Int32Array(3).fill(token),
      positions: Int32Array.from(lens, (n) => n + k),
      slotMask,
      cache: { keys, values, length: C },
    });
    for (let l = 0; l < L; l++) {
      copy(keys[l], out.kv.keys[l], 1, P + k);
      copy(values[l], out.kv.values[l], 1, P + k);
    }
    for (let r = 0; r < 3; r++) {
      slotMask[r * C + P + k] = 1;
      const d = maxDiff(out.logits.subarray(r * V, (r + 1) * V), refRow(r, P + k));
      assert.ok(d < 1e-4, `slots: row ${r} step ${k}: max |Δlogit| = ${d}`);
    }
  }

  // Concat: past_key_values → present, as the exported model runs.
  let past = (await policy.prefillResident(prompt)).present;
  let mask = prompt.mask;
  for (const [k, token] of [4, 6, 8].entries()) {
    const n = P + k + 1;
    const next = new Int32Array(3 * n);
    for (let r = 0; r < 3; r++) {
      next.set(mask.subarray(r * (n - 1), (r + 1) * (n - 1)), r * n);
      next[r * n + n - 1] = 1;
    }
    mask = next;
    const out = await policy.decodeResident({
      batch: 3,
      ids: new Int32Array(3).fill(token),
      positions: Int32Array.from(lens, (m) => m + k),
      mask,
      length: n,
    }, past);
    past = out.present;
    for (let r = 0; r < 3; r++) {
      const d = maxDiff(out.logits.subarray(r * V, (r + 1) * V), refRow(r, P + k));
      assert.ok(d < 1e-4, `concat: row ${r} step ${k}: max |Δlogit| = ${d}`);
    }
  }
  await policy.release();
});
