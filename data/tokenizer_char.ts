/**
 * Character tokenizer for the built-in tiny-AIME task: one id per character, three special
 * tokens with fixed ids.
 *
 * @example
 * ```ts
 * import { tinyAimeTokenizer } from "./tokenizer_char.ts";
 * const tok = tinyAimeTokenizer();
 * const ids = tok.encode("3+4=?", { bos: true });
 * tok.decode(ids); // "3+4=?"
 * ```
 *
 * @module
 */

import type { Tokenizer } from "./tokenizer.ts";

/** Fixed ids of the special tokens; characters start right after them. */
export const SPECIAL_IDS = { PAD: 0, BOS: 1, EOS: 2 } as const;

/** Printable names of the special tokens, in id order. */
export const SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"] as const;

/**
 * Characters of the tiny-AIME task, in id order (ids 3, 4, …). Changing this list changes every
 * token id, so it only ever grows at the end.
 */
export const TINY_AIME_ALPHABET = "0123456789+-*/%^=()?x;# \n";

/** Options for {@link CharTokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend `<bos>`. Default false. */
  bos?: boolean;
  /** Append `<eos>`. Default false. */
  eos?: boolean;
}

/** Options for {@link CharTokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (default true); otherwise render them as `<bos>`, `<eos>`, `<pad>`. */
  skipSpecial?: boolean;
  /** Stop at the first `<eos>` (default false). */
  stopAtEos?: boolean;
}

/** A tokenizer that maps each character of a fixed alphabet to one id. */
export class CharTokenizer implements Tokenizer {
  /** Characters in id order, after the special tokens. */
  readonly alphabet: string;
  /** `<bos>` id (always 1). */
  readonly bosId: number = SPECIAL_IDS.BOS;
  /** `<eos>` id (always 2). */
  readonly eosId: number = SPECIAL_IDS.EOS;
  /** `<pad>` id (always 0). */
  readonly padId: number = SPECIAL_IDS.PAD;
  readonly #ids: Map<string, number>;

  /**
   * @param alphabet Distinct single characters; character `k` gets id `3 + k`.
   */
  constructor(alphabet: string) {
    const chars = [...alphabet];
    this.#ids = new Map(chars.map((c, k) => [c, SPECIAL_TOKENS.length + k]));
    if (this.#ids.size !== chars.length) {
      throw new Error(`alphabet ${JSON.stringify(alphabet)} has repeated characters`);
    }
    this.alphabet = alphabet;
  }

  /** Number of ids: special tokens plus characters. */
  get vocabSize(): number {
    return SPECIAL_TOKENS.length + this.#ids.size;
  }

  /**
   * The vocabulary in id order (`vocab()[id]` is the token).
   *
   * @returns Special token names followed by the characters.
   */
  vocab(): string[] {
    return [...SPECIAL_TOKENS, ...this.#ids.keys()];
  }

  /**
   * Turn text into ids.
   *
   * @param text Text made only of alphabet characters.
   * @param options Whether to add `<bos>` / `<eos>`.
   * @returns One id per character, with the requested special tokens.
   * @throws Error naming the first unknown character and its position.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids: number[] = options.bos ? [SPECIAL_IDS.BOS] : [];
    let position = 0;
    for (const ch of text) {
      const id = this.#ids.get(ch);
      if (id === undefined) {
        const code = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
        throw new Error(
          `character ${JSON.stringify(ch)} (U+${code}) at position ${position} of ` +
            `${JSON.stringify(text)} is not in the vocabulary; expected one of ` +
            JSON.stringify(this.alphabet),
        );
      }
      ids.push(id);
      position++;
    }
    if (options.eos) ids.push(SPECIAL_IDS.EOS);
    return ids;
  }

  /**
   * Turn ids back into text.
   *
   * @param ids Token ids, each in `[0, vocabSize)`.
   * @param options Whether to keep special tokens and whether to stop at `<eos>`.
   * @returns The decoded text.
   * @throws Error naming the first id outside the vocabulary and its position.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    const vocab = this.vocab();
    let out = "";
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (!Number.isInteger(id) || id < 0 || id >= vocab.length) {
        throw new Error(
          `token id ${id} at position ${k} is outside the vocabulary [0, ${vocab.length})`,
        );
      }
      if (id === SPECIAL_IDS.EOS && options.stopAtEos) break;
      if (id < SPECIAL_TOKENS.length) {
        if (!skipSpecial) out += vocab[id];
      } else {
        out += vocab[id];
      }
    }
    return out;
  }
}

/**
 * The tokenizer of the built-in tiny-AIME task (alphabet {@link TINY_AIME_ALPHABET}).
 *
 * @returns A tokenizer with 28 ids: `<pad>`=0, `<bos>`=1, `<eos>`=2, then the characters.
 */
export function tinyAimeTokenizer(): CharTokenizer {
  return new CharTokenizer(TINY_AIME_ALPHABET);
}
