import assert from "node:assert/strict";
import { HfTokenizer, loadHfTokenizer } from "../../data/tokenizer_hf.ts";
import type { Tokenizer } from "../../data/tokenizer.ts";
import { makeTestDir } from "../_tmp.ts";
import { bpeModel, byteLevelAlphabet, QWEN2_SPLIT, specialTokens } from "../_hf_tokenizer.ts";

// ----- fixtures: small but real tokenizer files, built the way Qwen2 and DeepSeek-R1 lay theirs out

const QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/** Qwen2-Instruct's chat template (from its tokenizer_config.json). */
const QWEN2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * A byte-level BPE tokenizer.json shaped like Qwen2's: NFC normalizer, regex split + byte-level
 * pre-tokenizer, 256 byte tokens (id = byte value), a few merges, then the special tokens.
 */
function qwen2StyleTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteLevelAlphabet().forEach((c, b) => vocab[c] = b);
  const merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["i", "s"], ["Ġ", "is"], ["=", "?"]];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const first = Object.keys(vocab).length;
  const byteLevel = { add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specialTokens(QWEN2_SPECIALS, first),
    normalizer: { type: "NFC" },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: QWEN2_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", ...byteLevel },
      ],
    },
    post_processor: { type: "ByteLevel", ...byteLevel },
    decoder: { type: "ByteLevel", ...byteLevel },
    model: bpeModel(vocab, merges.map((m) => m.join(" "))),
  };
}

const qwenDir = await makeTestDir("tokenizer-hf-qwen2");
await Deno.writeTextFile(`${qwenDir}/tokenizer.json`, JSON.stringify(qwen2StyleTokenizerJson()));
await Deno.writeTextFile(
  `${qwenDir}/tokenizer_config.json`,
  JSON.stringify({
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    chat_template: QWEN2_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: 32768,
    tokenizer_class: "Qwen2Tokenizer",
  }),
);
await Deno.writeTextFile(
  `${qwenDir}/generation_config.json`,
  JSON.stringify({ eos_token_id: [262, 260] }),
);

/** DeepSeek-R1-Distill-Qwen's original chat template (from its tokenizer_config.json). */
const R1_CHAT_TEMPLATE =
  "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜>'}}{% endif %}";

const R1_SPECIALS = [
  "<｜begin▁of▁sentence｜>",
  "<｜end▁of▁sentence｜>",
  "<｜User｜>",
  "<｜Assistant｜>",
];

/** A WordLevel tokenizer with a whitespace pre-tokenizer and DeepSeek-R1's special tokens. */
function r1StyleFiles(): ConstructorParameters<typeof HfTokenizer>[0] {
  const words = ["[UNK]", "what", "is", "2", "+", "?", "4", "<think>", "</think>", "so"];
  return {
    tokenizer: {
      version: "1.0",
      added_tokens: specialTokens(R1_SPECIALS, words.length),
      normalizer: { type: "Lowercase" },
      pre_tokenizer: { type: "WhitespaceSplit" },
      // As in DeepSeek-R1's tokenizer.json: the post-processor would prepend BOS; encode() must
      // not apply it (the chat template writes BOS itself).
      post_processor: {
        type: "TemplateProcessing",
        single: [
          { SpecialToken: { id: R1_SPECIALS[0], type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
        ],
        pair: [
          { SpecialToken: { id: R1_SPECIALS[0], type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: {
          [R1_SPECIALS[0]]: { id: R1_SPECIALS[0], ids: [10], tokens: [R1_SPECIALS[0]] },
        },
      },
      model: {
        type: "WordLevel",
        vocab: Object.fromEntries(words.map((w, k) => [w, k])),
        unk_token: "[UNK]",
      },
      decoder: null,
    },
    config: {
      add_bos_token: true,
      bos_token: { __type: "AddedToken", content: "<｜begin▁of▁sentence｜>", special: true },
      eos_token: { __type: "AddedToken", content: "<｜end▁of▁sentence｜>", special: true },
      pad_token: { __type: "AddedToken", content: "<｜end▁of▁sentence｜>", special: true },
      chat_template: R1_CHAT_TEMPLATE,
    },
    source: "r1-style",
  };
}

// ----- tests -------------------------------------------------------------------------------------

Deno.test("loadHfTokenizer() reads the special ids, vocabulary size and stop ids of a model directory", async () => {
  const tok = await loadHfTokenizer(qwenDir);
  assert.equal(tok.vocabSize, 256 + 6 + 3);
  assert.equal(tok.bosId, null);
  assert.equal(tok.eosId, tok.tokenId("<|im_end|>"));
  assert.equal(tok.eosId, 264);
  assert.equal(tok.padId, 262); // <|endoftext|>
  assert.deepEqual(tok.stopIds, [264, 262, 260]); // eos first, then generation_config's
  assert.deepEqual(tok.specialTokens, {
    bos: null,
    eos: "<|im_end|>",
    pad: "<|endoftext|>",
    unk: null,
  });
});

Deno.test("HfTokenizer.encode() applies byte-level BPE merges and decode() inverts it exactly", async () => {
  const tok = await loadHfTokenizer(qwenDir);
  // Merged ids: 256 "Ġt", 257 "he", 258 "Ġthe", 259 "is", 260 "Ġis", 261 "=?". "the" at the start
  // has no space marker (t + he); " is" merges whole; digits split one by one.
  assert.deepEqual(tok.encode("the is 12=?"), [116, 257, 260, 32, 49, 50, 261]);
  assert.deepEqual(tok.encode("is the"), [259, 258]);
  const texts = [
    "What is 3+4=? Think step by step.\n#### 7",
    "  leading spaces, tabs\tand\r\nwindows newlines  ",
    "unicode: ½ € 😀 ñ 日本語 — \\boxed{\\frac{1}{2}}",
    "",
  ];
  for (const text of texts) {
    const ids = tok.encode(text);
    assert.ok(ids.every((id) => id >= 0 && id < tok.vocabSize));
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
  }
});

Deno.test("HfTokenizer.encode() maps special-token text to single ids and adds EOS only on request", async () => {
  const tok = await loadHfTokenizer(qwenDir);
  const ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
  assert.equal(ids[0], tok.tokenId("<|im_start|>"));
  assert.equal(ids.at(-1), tok.eosId);
  assert.equal(ids.length, 1 + 4 + 1 + 2 + 1);
  assert.deepEqual(tok.encode("hi", { bos: true, eos: true }), [104, 105, tok.eosId]);
});

Deno.test("HfTokenizer.decode() drops special tokens by default and can stop at any stop id", async () => {
  const tok: Tokenizer = await loadHfTokenizer(qwenDir);
  const ids = tok.encode("<|im_start|>the answer<|im_end|>\nignored<|endoftext|>");
  assert.equal(tok.decode(ids), "the answer\nignored");
  assert.equal(
    tok.decode(ids, { skipSpecial: false }),
    "<|im_start|>the answer<|im_end|>\nignored<|endoftext|>",
  );
  assert.equal(tok.decode(ids, { stopAtEos: true, skipSpecial: false }), "<|im_start|>the answer");
  assert.equal(tok.decode([tok.eosId, 104], { stopAtEos: true }), "");
  assert.equal(tok.decode([]), "");
  const pad = tok.encode("ok<|endoftext|><|endoftext|>");
  assert.equal(tok.decode(pad, { stopAtEos: true }), "ok"); // <|endoftext|> stops too
  assert.throws(
    () => tok.decode([104, 999]),
    /token id 999 at position 1 is outside the vocabulary \[0, 265\)/,
  );
});

Deno.test("HfTokenizer.applyChatTemplate() renders the Qwen2 chat format and its ids round-trip", async () => {
  const tok = await loadHfTokenizer(qwenDir);
  const prompt = tok.applyChatTemplate([{ role: "user", content: "What is 3+4?" }]);
  assert.equal(
    prompt,
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
      "<|im_start|>user\nWhat is 3+4?<|im_end|>\n<|im_start|>assistant\n",
  );
  const ids = tok.encode(prompt);
  assert.equal(ids.filter((id) => id === tok.tokenId("<|im_start|>")).length, 3);
  assert.equal(tok.decode(ids, { skipSpecial: false }), prompt);

  const noPrompt = tok.applyChatTemplate([
    { role: "system", content: "Be brief." },
    { role: "user", content: "hi" },
    { role: "assistant", content: "hello" },
  ], { addGenerationPrompt: false });
  assert.equal(
    noPrompt,
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n" +
      "<|im_start|>assistant\nhello<|im_end|>\n",
  );
});

Deno.test("HfTokenizer.applyChatTemplate() renders DeepSeek-R1's template with namespaces and </think> stripping", () => {
  const tok = new HfTokenizer(r1StyleFiles());
  assert.equal(tok.bosId, 10);
  assert.equal(tok.eosId, 11);
  assert.equal(tok.padId, 11);
  const prompt = tok.applyChatTemplate([{ role: "user", content: "what is 2 + 2 ?" }]);
  assert.equal(prompt, "<｜begin▁of▁sentence｜><｜User｜>what is 2 + 2 ?<｜Assistant｜>");
  const ids = tok.encode(prompt);
  assert.deepEqual(ids, [10, 12, 1, 2, 3, 4, 3, 5, 13]);
  assert.deepEqual(tok.encode("what is 2 ?"), [1, 2, 3, 5]);
  assert.deepEqual(tok.encode("What IS 2 ?", { bos: true, eos: true }), [10, 1, 2, 3, 5, 11]);

  const history = tok.applyChatTemplate([
    { role: "system", content: "S." },
    { role: "user", content: "what is 2 + 2 ?" },
    { role: "assistant", content: "<think> 2 + 2 </think> 4" },
  ], { addGenerationPrompt: false });
  assert.equal(
    history,
    "<｜begin▁of▁sentence｜>S.<｜User｜>what is 2 + 2 ?<｜Assistant｜> 4<｜end▁of▁sentence｜>",
  );
});

Deno.test("HfTokenizer.applyChatTemplate() prefers chat_template.jinja, picks named templates and surfaces raise_exception", () => {
  const base = r1StyleFiles();
  const fromFile = new HfTokenizer({
    ...base,
    chatTemplate: "{{ bos_token }}[{{ messages | length }}]",
  });
  assert.equal(
    fromFile.applyChatTemplate([{ role: "user", content: "x" }]),
    "<｜begin▁of▁sentence｜>[1]",
  );

  const named = new HfTokenizer({
    ...base,
    config: {
      ...base.config,
      chat_template: [
        { name: "default", template: "D{{ messages[0].content }}" },
        { name: "tool_use", template: "T{{ enable_thinking }}" },
        { name: "strict", template: "{{ raise_exception('only user turns') }}" },
      ],
    },
  });
  const msgs = [{ role: "user" as const, content: "q" }];
  assert.equal(named.applyChatTemplate(msgs), "Dq");
  assert.equal(
    named.applyChatTemplate(msgs, { name: "tool_use", variables: { enable_thinking: false } }),
    "Tfalse",
  );
  assert.throws(
    () => named.applyChatTemplate(msgs, { name: "json" }),
    /r1-style: no chat template named json; the config has default, tool_use, strict/,
  );
  assert.throws(
    () => named.applyChatTemplate(msgs, { name: "strict" }),
    /r1-style: chat template strict failed: only user turns/,
  );
  const none = new HfTokenizer({ ...base, config: { ...base.config, chat_template: undefined } });
  assert.throws(() => none.applyChatTemplate(msgs), /r1-style: no chat template; expected/);
});

Deno.test("loadHfTokenizer() reads chat_template.jinja beside tokenizer_config.json and prefers it", async () => {
  const dir = await makeTestDir("tokenizer-hf-jinja");
  for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
    await Deno.copyFile(`${qwenDir}/${name}`, `${dir}/${name}`);
  }
  await Deno.writeTextFile(
    `${dir}/chat_template.jinja`,
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}",
  );
  const tok = await loadHfTokenizer(dir);
  const text = tok.applyChatTemplate([{ role: "user", content: "hi" }]);
  assert.equal(text, "<|im_start|>user\nhi<|im_end|>\n");
  assert.deepEqual(tok.stopIds, [tok.eosId]); // no generation_config.json here
});

Deno.test("HfTokenizer rejects configs without an EOS token or with special tokens outside the vocabulary", async () => {
  const base = r1StyleFiles();
  assert.throws(
    () => new HfTokenizer({ ...base, config: { ...base.config, eos_token: null } }),
    /r1-style: tokenizer_config\.json has no eos_token/,
  );
  assert.throws(
    () => new HfTokenizer({ ...base, config: { ...base.config, pad_token: "<pad>" } }),
    /r1-style: pad_token "<pad>" is not in the vocabulary of tokenizer\.json \(14 ids\)/,
  );
  const empty = await makeTestDir("tokenizer-hf-empty");
  await assert.rejects(loadHfTokenizer(empty), /has no tokenizer\.json/);
  await Deno.writeTextFile(`${empty}/tokenizer.json`, "{ not json");
  await assert.rejects(loadHfTokenizer(empty), /tokenizer\.json is not valid JSON/);
});
