/**
 * The `smoke-hf` preset end to end through the real CLI: a random tiny Qwen2 and a small
 * byte-level BPE tokenizer with a chat template, both written here in Hugging Face layout, are
 * imported by `base`, scored, trained two RL steps per method and evaluated on the registered
 * math_train and aime24 files (small fixtures written here when no benchmark folder is beside the
 * checkout), with the opencompass-v2 grader.
 */

import assert from "node:assert/strict";
import { BENCHMARKS } from "../_benchmarks.ts";
import { makeTestDir } from "../_tmp.ts";
import { bpeModel, byteLevelAlphabet, QWEN2_SPLIT, specialTokens } from "../_hf_tokenizer.ts";
import { sent } from "../pipeline/_harness.ts";
import { BOXED_INSTRUCTION, DAPO_PREFIX, DAPO_SUFFIX } from "../../data/prompts.ts";
import { BOXED_EXTRACTION, extractAnswer, OPENCOMPASS_V2_EXTRACTION } from "../../data/extract.ts";
import { initWeights, Policy } from "../../kernels/policy.ts";
import { generate } from "../../kernels/sampling.ts";
import { qwen2ConfigFromHF } from "../../kernels/transformer.ts";
import { validateResults } from "../../stages/_rl/results.ts";
import { loadStagePolicy } from "../../stages/_policy_io.ts";
import { TRAINING_METHOD_NAMES } from "../../stages/_methods.ts";

// ----- a small byte-level BPE tokenizer, trained here, with DeepSeek-R1-style special tokens ---

const BOS = "<｜begin▁of▁sentence｜>";
const EOS = "<｜end▁of▁sentence｜>";
const USER = "<｜User｜>";
const ASSISTANT = "<｜Assistant｜>";
const PAD = "<｜▁pad▁｜>";
const SPECIALS = [BOS, EOS, USER, ASSISTANT, PAD];

/** R1-Distill's template, reduced to what a one-turn prompt uses: it writes its own BOS. */
const CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}" +
  "{{ '<｜User｜>' + m['content'] }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}";

/**
 * Learn `count` BPE merges from a text (most frequent adjacent pair first, ties by the pair's
 * text), and return tokenizer.json with the byte tokens (id = byte), the merges, the specials.
 */
function trainTokenizer(corpus: string, count: number): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const toChars = (word: string) => [...new TextEncoder().encode(word)].map((b) => alphabet[b]);
  const words = [...corpus.matchAll(new RegExp(QWEN2_SPLIT, "gu"))].map((m) => toChars(m[0]));
  const vocab: Record<string, number> = {};
  alphabet.forEach((c, b) => vocab[c] = b);
  const merges: string[] = [];
  for (let k = 0; k < count; k++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        const key = `${w[i]} ${w[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + 1);
      }
    }
    const best = [...pairs].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (best === undefined || best[1] < 2) break;
    const [a, b] = best[0].split(" ");
    merges.push(best[0]);
    vocab[a + b] = Object.keys(vocab).length;
    for (const w of words) {
      for (let i = 0; i + 1 < w.length; i++) {
        if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
      }
    }
  }
  const first = Object.keys(vocab).length;
  const byteLevel = { add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialTokens(SPECIALS, first),
    normalizer: { type: "NFC" },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN2_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", ...byteLevel },
      ],
    },
    // As R1-Distill's: encoding with special tokens puts the BOS in front.
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: BOS, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: BOS, type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { [BOS]: { id: BOS, ids: [first], tokens: [BOS] } },
    },
    decoder: { type: "ByteLevel", ...byteLevel },
    model: bpeModel(vocab, merges),
  };
}

/**
 * Write a random tiny Qwen2 checkpoint with its tokenizer files; the embedding has more rows
 * than the tokenizer has ids, as real checkpoints do.
 */
async function writeCheckpoint(dir: string): Promise<{ vocab: number; ids: number[] }> {
  await Deno.mkdir(dir, { recursive: true });
  const corpus = [DAPO_PREFIX, DAPO_SUFFIX, BOXED_INSTRUCTION].join("\n").repeat(2) +
    " Find the value of the sum of all integers such that the answer is a number.";
  const tokenizer = trainTokenizer(corpus, 96);
  const first = (tokenizer.added_tokens as { id: number }[])[0].id;
  const ids = SPECIALS.map((_, k) => first + k); // [bos, eos, user, assistant, pad]
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(tokenizer));
  await Deno.writeTextFile(
    `${dir}/tokenizer_config.json`,
    JSON.stringify({
      bos_token: BOS,
      eos_token: EOS,
      pad_token: PAD,
      add_bos_token: true,
      chat_template: CHAT_TEMPLATE,
      tokenizer_class: "LlamaTokenizerFast",
    }),
  );
  // Two stop ids: the EOS and, as a second one, the start of a new user turn.
  await Deno.writeTextFile(
    `${dir}/generation_config.json`,
    JSON.stringify({ bos_token_id: ids[0], eos_token_id: [ids[1], ids[2]] }),
  );
  const config = qwen2ConfigFromHF({
    vocab_size: first + SPECIALS.length + 11,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 2048,
    tie_word_embeddings: true,
  });
  const policy = Policy.create(config, initWeights(config, { seed: 7 }));
  await policy.save(dir, {
    config: { bos_token_id: ids[0], eos_token_id: ids[1], pad_token_id: ids[4] },
  });
  await policy.release();
  return { vocab: first + SPECIALS.length, ids };
}

// ----- datasets: the registered files, or fixtures under their names ------------------------

/** Fixture rows in the registered files' layouts, used only when no benchmark folder is here. */
async function writeFixtures(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const train = Array.from({ length: 8 }, (_, i) => ({
    id: `train/algebra/${i}.json`,
    problem: `What is $${i} + ${i + 2}$?`,
    answer: String(2 * i + 2),
    solution: `$${i} + ${i + 2} = \\boxed{${2 * i + 2}}$.`,
    subject: "Algebra",
    level: 1,
  }));
  const aime = Array.from({ length: 3 }, (_, i) => ({
    id: `2024-I-${i + 1}`,
    problem: `Find the remainder when $${i + 3}^{10}$ is divided by $1000$.`,
    answer: String((i + 3) ** 10 % 1000),
    solution: "",
  }));
  const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/math_train.jsonl`, jsonl(train));
  await Deno.writeTextFile(`${dir}/aime24.jsonl`, jsonl(aime));
}

async function artifactDir(root: string, node: string): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(`${root}/sent.lock.json`));
  const key: string = lock.nodes[node].key;
  return `${root}/store/${node.split("[")[0]}/${key.slice(0, 2)}/${key}`;
}

/**
 * The answers `eval.json` of the base records are the harness's reading (math_postprocess_v2) of
 * the base's responses: the same responses are generated again here (sample j of problem p draws
 * on the stream (evaluate/1, aime24/id, j) under any batching) and read with the harness's
 * extractor; our own `\boxed{}`/"answer is" reading of them gives other answers.
 */
async function checkHarnessAnswers(root: string): Promise<void> {
  const evalJson = JSON.parse(
    await Deno.readTextFile(`${await artifactDir(root, "evaluate[policy=base,seed=1]")}/eval.json`),
  );
  const problems: { id: string; answers: (string | null)[] }[] = evalJson.sets.aime24.problems;
  const rows: { id: string; problem: string }[] =
    (await Deno.readTextFile(`${await artifactDir(root, "dataset")}/eval/aime24.jsonl`)).trim()
      .split("\n").map((line) => JSON.parse(line));
  const bundle = await loadStagePolicy(await artifactDir(root, "base"), {
    threads: 1,
    use: "eval",
    grader: "opencompass-v2",
  });
  try {
    assert.deepEqual(bundle.reward.extraction, OPENCOMPASS_V2_EXTRACTION);
    const samples = problems[0].answers.length; // evaluate.samples of the preset
    const requests = rows.flatMap((row) =>
      Array.from({ length: samples }, (_, j) => ({
        prompt: bundle.promptIds(row.problem),
        problem: `aime24/${row.id}`,
        sample: j,
      }))
    );
    // The preset's sampling: evaluate.temperature 1, topP 1, maxTokens 8.
    const texts = (await generate(bundle.policy, requests, {
      seed: "evaluate/1",
      temperature: 1,
      topP: 1,
      maxNewTokens: 8,
      padId: bundle.tokenizer.padId,
      eosId: bundle.tokenizer.eosId,
      eosIds: bundle.stopIds,
    })).map((c) => bundle.responseText(c.tokens));
    const read = (config: typeof BOXED_EXTRACTION) =>
      texts.map((text) => {
        const found = extractAnswer(text, config);
        return found.kind === "answer" ? found.value : null;
      });
    assert.deepEqual(problems.map((p) => p.id), rows.map((r) => r.id));
    assert.deepEqual(problems.flatMap((p) => p.answers), read(OPENCOMPASS_V2_EXTRACTION));
    assert.notDeepEqual(read(OPENCOMPASS_V2_EXTRACTION), read(BOXED_EXTRACTION));
  } finally {
    await bundle.policy.release();
  }
}

const DATA = BENCHMARKS === null ? "fixtures written by the test" : BENCHMARKS;

Deno.test(`reproduce --preset smoke-hf imports an HF checkpoint, trains every method two steps and evaluates aime24 under opencompass-v2 (data: ${DATA})`, async () => {
  const root = await makeTestDir("smoke-hf");
  const model = `${root}/hf-model`;
  const { vocab, ids } = await writeCheckpoint(model);
  const sets = [`base.checkpoint=${model}`];
  if (BENCHMARKS === null) {
    await writeFixtures(`${root}/datasets`);
    sets.push(`data.dir=${root}/datasets`, "data.verify=false");
  } else {
    sets.push(`data.dir=${BENCHMARKS}`);
  }
  const args = ["--preset", "smoke-hf", "--store", `${root}/store`];
  for (const s of sets) args.push("--set", s);
  const t0 = performance.now();
  const run = await sent(["reproduce", ...args], { script: "pipeline/cli.ts" });
  const seconds = (performance.now() - t0) / 1000;
  const out = run.stdout + run.stderr;
  assert.equal(run.code, 0, out);

  // results.json: aime24 × (base, every method), each number made by the opencompass-v2 grader.
  const path = /^results: (.+)$/m.exec(run.stdout)?.[1];
  assert.ok(path, out);
  const results = validateResults(JSON.parse(await Deno.readTextFile(path)));
  assert.deepEqual(Object.keys(results.sets), ["aime24"]);
  assert.deepEqual(
    Object.keys(results.sets.aime24).sort(),
    ["base", ...TRAINING_METHOD_NAMES].sort(),
  );
  for (const policy of Object.values(results.sets.aime24)) {
    assert.equal(policy.seeds["1"].grader, "opencompass-v2");
  }
  const evalJson = JSON.parse(
    await Deno.readTextFile(`${await artifactDir(root, "evaluate[policy=sent,seed=1]")}/eval.json`),
  );
  assert.equal(evalJson.grader, "opencompass-v2");
  await checkHarnessAnswers(root);

  // Two RL steps per method, each with a reward for every response.
  for (const method of TRAINING_METHOD_NAMES) {
    const dir = await artifactDir(root, `train[method=${method},seed=1]`);
    const rows = (await Deno.readTextFile(`${dir}/metrics.jsonl`)).trim().split("\n")
      .map((line) => JSON.parse(line));
    assert.equal(rows.length, 2, method);
    assert.ok(rows.every((r) => Math.abs(r["reward/mean"]) <= 1 && r.response_length > 0));
  }
  const score = JSON.parse(
    await Deno.readTextFile(`${await artifactDir(root, "score")}/summary.json`),
  );
  assert.deepEqual([score.problems, score.grader], [8, "opencompass-v2"]);

  // The prompts the stages used: the checkpoint's chat template, one BOS, the two stop ids.
  const base = await artifactDir(root, "base");
  const problem = "What is $1 + 3$?";
  for (const use of ["train", "eval"] as const) {
    const bundle = await loadStagePolicy(base, { threads: 1, use });
    try {
      const prompt = bundle.promptIds(problem);
      assert.equal(prompt[0], ids[0]);
      assert.equal(prompt.filter((id) => id === ids[0]).length, 1, "one BOS");
      const text = bundle.tokenizer.decode(prompt, { skipSpecial: false });
      const content = use === "train"
        ? `${DAPO_PREFIX}\n\n${problem}\n\n${DAPO_SUFFIX}`
        : `${problem}\n${BOXED_INSTRUCTION}`;
      assert.equal(text, `${BOS}${USER}${content}${ASSISTANT}<think>\n`);
      assert.deepEqual(bundle.stopIds, [ids[1], ids[2]]);
      assert.deepEqual(
        bundle.reward.extraction?.order,
        use === "train" ? ["answer_line", "boxed"] : ["boxed", "answer_is"],
      );
      // Ids the embedding has beyond the tokenizer's decode to nothing; text stops at a stop id.
      const answer = bundle.tokenizer.encode("Answer: 4");
      assert.equal(
        bundle.responseText([...answer, vocab + 3, ids[2], ...answer]),
        "Answer: 4",
      );
    } finally {
      await bundle.policy.release();
    }
  }
  console.log(`smoke-hf reproduce: ${seconds.toFixed(1)} s`);
});
