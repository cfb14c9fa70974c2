/**
 * Hugging Face tokenizers for real models: `tokenizer.json` runs through `@huggingface/tokenizers`
 * (the pure-JS port of the Rust `tokenizers` library that transformers.js uses), and chat
 * templates from `tokenizer_config.json` or `chat_template.jinja` render through
 * `@huggingface/jinja`.
 *
 * Files read from a model directory:
 *
 * | file | used for |
 * | --- | --- |
 * | `tokenizer.json` | the tokenizer itself (normalizer, pre-tokenizer, model, decoder, added tokens); required |
 * | `tokenizer_config.json` | `bos_token` / `eos_token` / `pad_token` / `unk_token`, `chat_template`, `clean_up_tokenization_spaces` |
 * | `chat_template.jinja` | the chat template, when saved on its own (wins over `tokenizer_config.json`) |
 * | `generation_config.json` | extra stop ids (`eos_token_id`, a number or a list) |
 *
 * `encode` never lets the tokenizer's post-processor add special tokens; BOS/EOS are added only
 * when asked, and a chat template writes its own (`{{ bos_token }}`). This matches transformers'
 * `apply_chat_template(..., tokenize=True)`, which encodes without special tokens.
 *
 * @example
 * Needs a downloaded checkpoint folder, so the example is not run:
 *
 * ```ts ignore
 * import { loadHfTokenizer } from "./tokenizer_hf.ts";
 * const tok = await loadHfTokenizer("checkpoints/qwen2.5-0.5b-instruct");
 * const prompt = tok.applyChatTemplate([{ role: "user", content: "What is 1+1?" }]);
 * // "<|im_start|>system\n…<|im_end|>\n<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n"
 * const ids = tok.encode(prompt);
 * tok.decode(ids, { skipSpecial: false }) === prompt; // true
 * ```
 *
 * @module
 */

import { Tokenizer as JsTokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import type { ChatMessage } from "./prompts.ts";
import type { Tokenizer, TokenizerDecodeOptions, TokenizerEncodeOptions } from "./tokenizer.ts";

/** The contents of a model's tokenizer files, parsed. */
export interface HfTokenizerFiles {
  /** Parsed `tokenizer.json`. */
  tokenizer: unknown;
  /** Parsed `tokenizer_config.json` (special tokens, chat template, decoding options). */
  config?: Readonly<Record<string, unknown>>;
  /** Text of `chat_template.jinja`; wins over `config.chat_template`. */
  chatTemplate?: string;
  /** Parsed `generation_config.json`; its `eos_token_id` adds stop ids. */
  generationConfig?: Readonly<Record<string, unknown>>;
  /** Where the files came from, for error messages (default "tokenizer"). */
  source?: string;
}

/** Options of {@link HfTokenizer.applyChatTemplate}. */
export interface ChatTemplateOptions {
  /** End with the header of an assistant turn, so the model answers next (default true). */
  addGenerationPrompt?: boolean;
  /** Which template when the config has a named list (default "default"). */
  name?: string;
  /** Extra template variables, e.g. `{ enable_thinking: false }`. */
  variables?: Readonly<Record<string, unknown>>;
}

/** The special tokens a tokenizer config names. */
export interface SpecialTokens {
  bos: string | null;
  eos: string;
  pad: string | null;
  unk: string | null;
}

/** Special tokens are strings or AddedToken objects `{content: "…"}` in tokenizer_config.json. */
function tokenText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && "content" in value) {
    const content = (value as { content: unknown }).content;
    if (typeof content === "string") return content;
  }
  return null;
}

/** A Hugging Face tokenizer behind the shared {@link Tokenizer} contract. */
export class HfTokenizer implements Tokenizer {
  /** Where the files came from. */
  readonly source: string;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number;
  /** Ids that end generation: EOS plus any `eos_token_id` of generation_config.json. */
  readonly stopIds: readonly number[];
  /** Special token strings, as the chat template sees them. */
  readonly specialTokens: SpecialTokens;
  readonly #impl: JsTokenizer;
  readonly #config: Readonly<Record<string, unknown>>;
  readonly #chatTemplate: string | undefined;
  readonly #templates = new Map<string, Template>();

  /**
   * @param files Parsed tokenizer files (see {@link loadHfTokenizer} to read them from disk).
   * @throws Error naming the source when tokenizer.json is unusable or a special token is not in
   *   the vocabulary.
   */
  constructor(files: HfTokenizerFiles) {
    this.source = files.source ?? "tokenizer";
    const config = files.config ?? {};
    this.#config = config;
    this.#chatTemplate = files.chatTemplate;
    if (typeof files.tokenizer !== "object" || files.tokenizer === null) {
      throw new Error(`${this.source}: tokenizer.json is not a JSON object`);
    }
    try {
      // transformers defaults clean_up_tokenization_spaces to false; the JS port to true.
      this.#impl = new JsTokenizer(files.tokenizer, {
        ...config,
        clean_up_tokenization_spaces: config.clean_up_tokenization_spaces ?? false,
      });
    } catch (e) {
      throw new Error(`${this.source}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    let maxId = -1;
    for (const id of this.#impl.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const eos = tokenText(config.eos_token);
    if (eos === null) {
      throw new Error(
        `${this.source}: tokenizer_config.json has no eos_token; expected a token string such ` +
          `as "<|endoftext|>" (generation needs to know where to stop)`,
      );
    }
    this.specialTokens = {
      bos: tokenText(config.bos_token),
      eos,
      pad: tokenText(config.pad_token),
      unk: tokenText(config.unk_token),
    };
    const bos = this.specialTokens.bos;
    this.bosId = bos === null ? null : this.#idOf(bos, "bos_token");
    this.eosId = this.#idOf(eos, "eos_token");
    const pad = this.specialTokens.pad;
    this.padId = pad === null ? this.eosId : this.#idOf(pad, "pad_token");
    const extra = files.generationConfig?.eos_token_id;
    const extraIds = typeof extra === "number" ? [extra] : Array.isArray(extra) ? extra : [];
    this.stopIds = [...new Set([this.eosId, ...extraIds.filter((x) => Number.isInteger(x))])];
  }

  #idOf(token: string, field: string): number {
    const id = this.#impl.token_to_id(token);
    if (id === undefined) {
      throw new Error(
        `${this.source}: ${field} ${JSON.stringify(token)} is not in the vocabulary of ` +
          `tokenizer.json (${this.vocabSize} ids)`,
      );
    }
    return id;
  }

  /**
   * The id of one token string (as it appears in the vocabulary, e.g. `"Ġthe"` or `"<|im_end|>"`).
   *
   * @param token A vocabulary entry.
   * @returns Its id, or `undefined` when it is not in the vocabulary.
   */
  tokenId(token: string): number | undefined {
    return this.#impl.token_to_id(token);
  }

  /**
   * Text to ids. Special-token strings in the text (e.g. `<|im_start|>`) map to their ids; the
   * tokenizer's post-processor is not applied.
   *
   * @param text The text.
   * @param options Whether to add BOS (when the tokenizer has one) and EOS.
   * @returns Token ids.
   */
  encode(text: string, options: TokenizerEncodeOptions = {}): number[] {
    const ids = this.#impl.encode(text, { add_special_tokens: false }).ids;
    if (options.bos && this.bosId !== null) ids.unshift(this.bosId);
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  /**
   * Ids to text.
   *
   * @param ids Token ids, each in `[0, vocabSize)`.
   * @param options Keep special tokens (default: drop them); stop at the first stop id.
   * @returns The text.
   * @throws Error naming the first id outside the vocabulary and its position.
   */
  decode(ids: ArrayLike<number>, options: TokenizerDecodeOptions = {}): string {
    const list: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(
          `${this.source}: token id ${id} at position ${k} is outside the vocabulary ` +
            `[0, ${this.vocabSize})`,
        );
      }
      if (options.stopAtEos && this.stopIds.includes(id)) break;
      list.push(id);
    }
    if (list.length === 0) return ""; // the library refuses empty input
    return this.#impl.decode(list, { skip_special_tokens: options.skipSpecial ?? true });
  }

  /**
   * Render chat messages with the model's chat template, as transformers'
   * `apply_chat_template(messages, tokenize=False)` does. The template sees `messages`,
   * `add_generation_prompt`, `bos_token`, `eos_token`, `pad_token`, `unk_token`, any
   * `variables`, and the engine's built-ins (`raise_exception(msg)`, `range`, `namespace`, …).
   *
   * @param messages The conversation.
   * @param options Generation prompt, template name and extra variables.
   * @returns The prompt text; encode it with `encode(text)` (no BOS: the template adds its own).
   * @throws Error naming the source when there is no chat template, the name is unknown, or the
   *   template fails or raises.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const name = options.name ?? "default";
    let template = this.#templates.get(name);
    if (template === undefined) {
      template = new Template(this.#templateSource(name));
      this.#templates.set(name, template);
    }
    const { bos, eos, pad, unk } = this.specialTokens;
    try {
      return template.render({
        bos_token: bos ?? "",
        eos_token: eos,
        pad_token: pad ?? "",
        unk_token: unk ?? "",
        ...options.variables,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: options.addGenerationPrompt ?? true,
      });
    } catch (e) {
      throw new Error(`${this.source}: chat template ${name} failed: ${(e as Error).message}`);
    }
  }

  /** The template text: chat_template.jinja, a config string, or a named entry of a config list. */
  #templateSource(name: string): string {
    if (this.#chatTemplate !== undefined && name === "default") return this.#chatTemplate;
    const raw = this.#config.chat_template;
    if (typeof raw === "string" && name === "default") return raw;
    if (Array.isArray(raw)) {
      const entry = raw.find((t) => t?.name === name);
      if (typeof entry?.template === "string") return entry.template;
      const names = raw.map((t) => t?.name).join(", ");
      throw new Error(`${this.source}: no chat template named ${name}; the config has ${names}`);
    }
    throw new Error(
      `${this.source}: no chat template${name === "default" ? "" : ` named ${name}`}; expected ` +
        "chat_template in tokenizer_config.json or a chat_template.jinja file",
    );
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

function parseJson(path: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${path} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/**
 * Load a model directory's tokenizer (the files of the module table; only `tokenizer.json` is
 * required, but `tokenizer_config.json` must name an `eos_token`).
 *
 * @param dir A Hugging Face model directory.
 * @returns The tokenizer.
 * @throws Error naming the file that is missing or malformed.
 *
 * @example
 * With a downloaded checkpoint folder (not run here):
 *
 * ```ts ignore
 * import { loadHfTokenizer } from "./tokenizer_hf.ts";
 * const tok = await loadHfTokenizer("checkpoints/deepseek-r1-distill-qwen-1.5b");
 * tok.stopIds; // [151643]
 * ```
 */
export async function loadHfTokenizer(dir: string): Promise<HfTokenizer> {
  const read = async (name: string) => {
    const text = await readOptional(`${dir}/${name}`);
    return text === undefined ? undefined : parseJson(`${dir}/${name}`, text);
  };
  const tokenizer = await read("tokenizer.json");
  if (tokenizer === undefined) {
    throw new Error(`${dir} has no tokenizer.json; expected a Hugging Face tokenizer directory`);
  }
  return new HfTokenizer({
    tokenizer,
    config: await read("tokenizer_config.json"),
    chatTemplate: await readOptional(`${dir}/chat_template.jinja`),
    generationConfig: await read("generation_config.json"),
    source: dir,
  });
}
