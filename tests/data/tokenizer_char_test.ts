import assert from "node:assert/strict";
import {
  CharTokenizer,
  SPECIAL_IDS,
  TINY_AIME_ALPHABET,
  tinyAimeTokenizer,
} from "../../data/tokenizer_char.ts";

Deno.test("tinyAimeTokenizer() has fixed special ids and at most 40 symbols", () => {
  const tok = tinyAimeTokenizer();
  assert.deepEqual(SPECIAL_IDS, { PAD: 0, BOS: 1, EOS: 2 });
  assert.deepEqual(tok.vocab().slice(0, 3), ["<pad>", "<bos>", "<eos>"]);
  assert.equal(tok.vocabSize, 3 + TINY_AIME_ALPHABET.length);
  assert.ok(tok.vocabSize <= 40);
  assert.equal(tok.vocab()[tok.encode("0")[0]], "0");
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId], [0, 1, 2]);
});

Deno.test("CharTokenizer.encode() and decode() round-trip with bos and eos", () => {
  const tok = tinyAimeTokenizer();
  const text = "(37+58)*6-143=?\n37+58=95\n#### 427";
  const ids = tok.encode(text, { bos: true, eos: true });
  assert.equal(ids.length, text.length + 2);
  assert.equal(ids[0], SPECIAL_IDS.BOS);
  assert.equal(ids[ids.length - 1], SPECIAL_IDS.EOS);
  assert.equal(tok.decode(ids), text);
  assert.equal(tok.decode(ids, { skipSpecial: false }), `<bos>${text}<eos>`);
});

Deno.test("CharTokenizer.decode() stops at the first eos when asked", () => {
  const tok = tinyAimeTokenizer();
  const ids = [...tok.encode("12", { eos: true }), ...tok.encode("34"), SPECIAL_IDS.PAD];
  assert.equal(tok.decode(ids, { stopAtEos: true }), "12");
  assert.equal(tok.decode(ids), "1234");
});

Deno.test("CharTokenizer.encode() names an unknown character and its position", () => {
  assert.throws(
    () => tinyAimeTokenizer().encode("12+a"),
    /character "a" \(U\+0061\) at position 3 of "12\+a" is not in the vocabulary/,
  );
});

Deno.test("CharTokenizer.decode() rejects ids outside the vocabulary", () => {
  const tok = tinyAimeTokenizer();
  assert.throws(
    () => tok.decode([4, tok.vocabSize]),
    /token id 28 at position 1 is outside the vocabulary \[0, 28\)/,
  );
});

Deno.test("CharTokenizer rejects an alphabet with repeated characters", () => {
  assert.throws(() => new CharTokenizer("abca"), /repeated characters/);
});
