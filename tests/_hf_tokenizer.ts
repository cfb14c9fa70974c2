/**
 * Pieces of Hugging Face `tokenizer.json` files that several tests build: the byte-level
 * alphabet and Qwen2's split pattern, the `added_tokens` entries of special tokens, and a BPE
 * model block. Each test still chooses its own vocabulary, specials and processors.
 */

/**
 * GPT-2's byte → printable character table, which byte-level BPE vocabularies are written in:
 * printable Latin-1 bytes map to themselves, the others to U+0100 onward in byte order.
 */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  return Array.from(
    { length: 256 },
    (_, b) => String.fromCodePoint(printable(b) ? b : 256 + shifted++),
  );
}

/** Qwen2's pre-tokenizer split pattern (contractions, letters, single digits, punctuation, spaces). */
export const QWEN2_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * `added_tokens` entries for special tokens with consecutive ids.
 *
 * @param contents The tokens' texts, in id order.
 * @param firstId Id of the first.
 * @returns The entries.
 */
export function specialTokens(contents: readonly string[], firstId: number) {
  return contents.map((content, k) => ({
    id: firstId + k,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
}

/**
 * A BPE `model` block without unknown token, prefixes or byte fallback.
 *
 * @param vocab Token → id.
 * @param merges Merges as `"a b"` strings.
 * @returns The block.
 */
export function bpeModel(vocab: Record<string, number>, merges: readonly string[]) {
  return {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: "",
    end_of_word_suffix: "",
    fuse_unk: false,
    byte_fallback: false,
    vocab,
    merges,
  };
}
