/**
 * The tokenizer contract shared by the character tokenizer of the built-in task
 * (`tokenizer_char.ts`) and Hugging Face tokenizers of real models (`tokenizer_hf.ts`), so that
 * sampling, scoring and training code works with either.
 *
 * @example
 * ```ts
 * import type { Tokenizer } from "./tokenizer.ts";
 * function promptIds(tok: Tokenizer, text: string): number[] {
 *   return tok.encode(text, { bos: tok.bosId !== null });
 * }
 * ```
 *
 * @module
 */

/** Options of {@link Tokenizer.encode}. */
export interface TokenizerEncodeOptions {
  /** Prepend the BOS token (default false; nothing is added when the tokenizer has none). */
  bos?: boolean;
  /** Append the EOS token (default false). */
  eos?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface TokenizerDecodeOptions {
  /** Drop special tokens (default true); otherwise render them as their text. */
  skipSpecial?: boolean;
  /** Stop at the first EOS token (default false). */
  stopAtEos?: boolean;
}

/** Text ↔ token ids, with the special ids generation needs. */
export interface Tokenizer {
  /** Number of ids: every id is in `[0, vocabSize)`. A model's embedding may be larger. */
  readonly vocabSize: number;
  /** Beginning-of-sequence id, or `null` when the tokenizer has none (Qwen2). */
  readonly bosId: number | null;
  /** End-of-sequence id: generation stops when it is sampled. */
  readonly eosId: number;
  /** Id used to pad batches; masked out of every loss. */
  readonly padId: number;
  /**
   * Text to ids.
   *
   * @param text The text; special-token strings in it map to their ids.
   * @param options Whether to add BOS / EOS.
   */
  encode(text: string, options?: TokenizerEncodeOptions): number[];
  /**
   * Ids to text.
   *
   * @param ids Token ids, each in `[0, vocabSize)`.
   * @param options Whether to keep special tokens and whether to stop at EOS.
   */
  decode(ids: ArrayLike<number>, options?: TokenizerDecodeOptions): string;
}
