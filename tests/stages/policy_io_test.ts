/**
 * How stages build prompts from a policy's descriptor: which template each use gets, and the
 * one-BOS rule for chat templates that write their own BOS (with real Hugging Face tokenizers).
 */

import assert from "node:assert/strict";
import { HfTokenizer } from "../../data/tokenizer_hf.ts";
import { tinyAimeTokenizer } from "../../data/tokenizer_char.ts";
import {
  charPolicyDescriptor,
  hfPolicyDescriptor,
  promptIdsOf,
  promptUse,
  rewardOptionsFor,
  tokenizerAddsBos,
} from "../../stages/_policy_io.ts";
import { reward } from "../../data/reward.ts";
import { specialTokens } from "../_hf_tokenizer.ts";

/** A word-level tokenizer.json with a BOS; `post` is its post-processor. */
function tokenizerJson(post: unknown): Record<string, unknown> {
  const words = ["[UNK]", "What", "is", "2", "+", "?", "Please", "\\boxed{}."];
  const specials = ["<s>", "</s>", "<user>", "<bot>"];
  return {
    version: "1.0",
    added_tokens: specialTokens(specials, words.length),
    normalizer: null,
    pre_tokenizer: { type: "Whitespace" },
    post_processor: post,
    decoder: null,
    model: {
      type: "WordLevel",
      vocab: Object.fromEntries(words.map((w, i) => [w, i])),
      unk_token: "[UNK]",
    },
  };
}

const ADDS_BOS = {
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { "<s>": { id: "<s>", ids: [8], tokens: ["<s>"] } },
};

function tokenizer(template: string, bos: string | null): HfTokenizer {
  return new HfTokenizer({
    tokenizer: tokenizerJson(null),
    config: { bos_token: bos, eos_token: "</s>", chat_template: template },
  });
}

Deno.test("tokenizerAddsBos() reads the post-processor, alone or inside a Sequence", () => {
  assert.equal(tokenizerAddsBos(tokenizerJson(ADDS_BOS), "<s>"), true);
  assert.equal(
    tokenizerAddsBos(tokenizerJson({ type: "Sequence", processors: [ADDS_BOS] }), "<s>"),
    true,
  );
  assert.equal(tokenizerAddsBos(tokenizerJson({ type: "ByteLevel" }), "<s>"), false);
  assert.equal(tokenizerAddsBos(tokenizerJson(null), "<s>"), false);
  assert.equal(tokenizerAddsBos(tokenizerJson(ADDS_BOS), null), false);
});

Deno.test("promptIdsOf() gives a chat prompt one BOS when the tokenizer adds one, none otherwise", () => {
  const withBos = "{{ bos_token }}{% for m in messages %}<user>{{ m['content'] }}{% endfor %}<bot>";
  const tok = tokenizer(withBos, "<s>");
  const bos = tok.bosId!;
  // The template's BOS text is removed; the BOS id comes back only if the tokenizer's own
  // encoding would add it (as the evaluation harness's engine does): one BOS, never two.
  const kept = promptIdsOf(tok, "qwen-boxed-chat", "What is 2 + 2 ?", { addsBos: true });
  const dropped = promptIdsOf(tok, "qwen-boxed-chat", "What is 2 + 2 ?", { addsBos: false });
  assert.equal(kept[0], bos);
  assert.equal(kept.filter((id) => id === bos).length, 1);
  assert.deepEqual(kept.slice(1), dropped);
  assert.ok(!dropped.includes(bos));
  assert.equal(dropped[0], tok.tokenId("<user>"));
  // A template without a BOS, or a tokenizer without one: the text as it is.
  const plain = tokenizer("{% for m in messages %}<user>{{ m['content'] }}{% endfor %}<bot>", null);
  const ids = promptIdsOf(plain, "qwen-boxed-chat", "What is 2 + 2 ?", { addsBos: true });
  assert.equal(ids[0], plain.tokenId("<user>"));
  assert.ok(!ids.includes(plain.tokenId("<s>")!));
});

Deno.test("a checkpoint's descriptor prompts training in DAPO's Answer: form and evaluation with \\boxed{}", () => {
  const d = hfPolicyDescriptor(true);
  assert.deepEqual(promptUse(d, "eval"), {
    prompt: "qwen-boxed-chat",
    extraction: { order: ["boxed", "answer_is"] },
  });
  assert.deepEqual(promptUse(d, "train"), {
    prompt: "dapo-chat",
    extraction: { order: ["answer_line", "boxed"] },
  });
  assert.equal(promptUse(hfPolicyDescriptor(false), "train").prompt, "dapo-base");
  // The built-in task has one prompt for both uses.
  const c = charPolicyDescriptor(tinyAimeTokenizer());
  assert.deepEqual(promptUse(c, "train"), promptUse(c, "eval"));
});

Deno.test("rewardOptionsFor() reads evaluation answers as the paper's harness under opencompass-v2 and keeps every other extraction", () => {
  const d = hfPolicyDescriptor(true);
  const c = charPolicyDescriptor(tinyAimeTokenizer());
  const order = (desc: typeof d, use: "eval" | "train", mode?: string) =>
    rewardOptionsFor(desc, use, mode).extraction?.order;
  assert.deepEqual(order(d, "eval", "opencompass-v2"), ["opencompass_v2"]);
  assert.deepEqual(order(d, "eval", "lenient"), ["boxed", "answer_is"]);
  assert.deepEqual(order(d, "eval"), ["boxed", "answer_is"]);
  // Training rewards and the built-in task's `#### N` keep their own extraction in every mode.
  assert.deepEqual(order(d, "train", "opencompass-v2"), ["answer_line", "boxed"]);
  assert.deepEqual(order(c, "eval", "opencompass-v2"), ["hash"]);
  assert.equal(rewardOptionsFor(d, "eval", "opencompass-v2").mode, "opencompass-v2");
  assert.equal(rewardOptionsFor(d, "eval").mode, undefined);

  // No box: the harness takes the sentence that announces the answer; ours reads "answer is".
  const text = "The final answer is 5. Check: 5 = 5.";
  const harness = reward(text, "5", rewardOptionsFor(d, "eval", "opencompass-v2"));
  assert.deepEqual([harness.reward, harness.answer], [1, "5"]);
  assert.equal(
    harness.extraction.kind === "answer" && harness.extraction.extractor,
    "opencompass_v2",
  );
  // A box written `\fbox{…}` is no answer to the harness, though the lenient reading takes it.
  const fbox = "So we get \\fbox{7}";
  assert.equal(reward(fbox, "7", rewardOptionsFor(d, "eval", "opencompass-v2")).reward, -1);
  assert.equal(reward(fbox, "7", rewardOptionsFor(d, "eval", "lenient")).reward, 1);
});
