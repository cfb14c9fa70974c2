/**
 * A policy written as a complete Hugging Face model folder, so that other tools open it as it is:
 * `transformers` (Python), transformers.js and onnxruntime-genai. `base` and `train` write their
 * `policy/` folders with {@link writeHfModelFolder}.
 *
 * | file | what | read by |
 * | --- | --- | --- |
 * | `config.json` | architecture, `bos/eos/pad_token_id`, `transformers.js_config` | all |
 * | `model.safetensors` (or shards + index) | float32 weights under HF names | transformers, this pipeline |
 * | `generation_config.json` | the same token ids; greedy by default | transformers, transformers.js |
 * | `tokenizer.json`, `tokenizer_config.json` | tokenizer, special tokens, chat template | all |
 * | `onnx/model.onnx` (+ `model.onnx_data`) | the decoder with Optimum names (kernels/export.ts) | transformers.js, genai |
 * | `genai_config.json` | decoder file, input/output names, heads, search defaults | onnxruntime-genai |
 * | `sent_policy.json` | tokenizer kind, prompt template, answer extraction | this pipeline |
 *
 * **The character tokenizer as `tokenizer.json`.** One id per character becomes a BPE model with
 * the characters (and the three special tokens) as its vocabulary and no merges, so every
 * character is one token; no normalizer and no pre-tokenizer, so spaces and newlines are plain
 * characters; a `Fuse` decoder, so decoding concatenates the tokens (without a decoder the
 * libraries join tokens with spaces). The three special tokens are added tokens with their fixed
 * ids (`<pad>` 0, `<bos>` 1, `<eos>` 2), and a template post-processor puts `<bos>` in front
 * when special tokens are asked for, which is how this pipeline encodes prompts. The chat
 * template writes `<bos>`, then each turn's content followed by a newline: for one user turn
 * holding a problem, exactly the built-in task's prompt.
 *
 * **genai_config.json** sits at the folder's top, next to the tokenizer files genai reads, and
 * names `onnx/model.onnx` as the decoder file. The decoder concatenates past and new keys
 * (it returns `present.*` = past ‖ new), so `past_present_share_buffer` is false.
 *
 * @example
 * ```ts
 * import { writeHfModelFolder } from "./_export.ts";
 * import { charPolicyDescriptor } from "./_policy_io.ts";
 * import { tinyAimeTokenizer } from "../data/tokenizer_char.ts";
 * import { initWeights, Policy } from "../kernels/policy.ts";
 * import { tinyPolicyConfig } from "../kernels/transformer.ts";
 * const tokenizer = tinyAimeTokenizer();
 * const config = tinyPolicyConfig(tokenizer.vocabSize);
 * const policy = Policy.create(config, initWeights(config, { seed: 1 }));
 * const descriptor = charPolicyDescriptor(tokenizer);
 * await writeHfModelFolder(".sent/tmp/hf-folder-example", { policy, tokenizer, descriptor });
 * await Deno.remove(".sent/tmp/hf-folder-example", { recursive: true });
 * ```
 *
 * @module
 */

import { join } from "node:path";
import type { Tokenizer } from "../data/tokenizer.ts";
import { CharTokenizer, SPECIAL_TOKENS } from "../data/tokenizer_char.ts";
import { EXPORT_FILES, exportDecoder, type ExportedDecoder } from "../kernels/export.ts";
import type { Policy } from "../kernels/policy.ts";
import type { Qwen2Config } from "../kernels/transformer.ts";
import { type PolicyDescriptor, writePolicyDescriptor } from "./_policy_io.ts";

/** Sub-folder of the ONNX decoder, where transformers.js looks for `model.onnx`. */
export const ONNX_DIR = "onnx";

/** Files of an HF tokenizer that travel with the weights when present (the base import's list). */
export const HF_TOKENIZER_FILES: readonly string[] = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "generation_config.json",
];

/** What goes into the folder besides the weights. */
export interface HfFolderSource {
  /** The policy; its weights are written as they are now. */
  policy: Policy;
  /** Its tokenizer: a `CharTokenizer` is written as `tokenizer.json`; others are copied. */
  tokenizer: Tokenizer;
  /** Tokenizer kind, prompt template and extraction (written as `sent_policy.json`). */
  descriptor: PolicyDescriptor;
  /**
   * Folder holding the HF tokenizer files to copy (a non-character tokenizer), e.g. the base
   * artifact's `policy/`; ignored for the character tokenizer, and skipped when it is `dir`
   * itself (the files are already there).
   */
  tokenizerDir?: string;
}

/** What {@link writeHfModelFolder} wrote. */
export interface HfFolder {
  /** Files written or copied, relative to the folder, sorted. */
  readonly files: string[];
  /** The ONNX decoder's paths and input and output names. */
  readonly onnx: ExportedDecoder;
}

/**
 * Write a policy as a complete HF model folder (see the module doc for the files).
 *
 * @param dir The folder (created if needed; files of the same names are replaced).
 * @param source Policy, tokenizer, descriptor and where HF tokenizer files come from.
 * @returns The files written and the ONNX decoder's names.
 * @throws Error naming the tokenizer folder when a non-character tokenizer has no files to copy.
 */
export async function writeHfModelFolder(dir: string, source: HfFolderSource): Promise<HfFolder> {
  const { policy, tokenizer } = source;
  await Deno.mkdir(dir, { recursive: true });
  const ids = tokenIds(tokenizer);
  const onnxDir = join(dir, ONNX_DIR);
  const onnx = await exportDecoder(policy.config, policy.weights, onnxDir, { writeConfig: false });
  await policy.save(dir, {
    config: {
      ...ids,
      // transformers.js: load onnx/model.onnx (not a quantized variant), with its data file.
      "transformers.js_config": {
        dtype: "fp32",
        ...(onnx.data ? { use_external_data_format: true } : {}),
      },
    },
  });
  const copied = await writeTokenizerFiles(dir, source);
  if (!copied.includes("generation_config.json")) {
    await writeJson(join(dir, "generation_config.json"), generationConfig(ids));
  }
  await writeJson(join(dir, "genai_config.json"), genaiConfig(policy.config, ids));
  await writePolicyDescriptor(dir, source.descriptor);
  return { files: await listFiles(dir), onnx };
}

// ----- token ids and small configs ----------------------------------------------------------

/** The special ids as config keys; `eos_token_id` lists every stop id when there are several. */
interface TokenIds {
  bos_token_id: number | null;
  eos_token_id: number | number[];
  pad_token_id: number;
}

function tokenIds(tokenizer: Tokenizer): TokenIds {
  const stops = (tokenizer as { stopIds?: readonly number[] }).stopIds ?? [tokenizer.eosId];
  return {
    bos_token_id: tokenizer.bosId,
    eos_token_id: stops.length > 1 ? [...stops] : tokenizer.eosId,
    pad_token_id: tokenizer.padId,
  };
}

/**
 * `generation_config.json`: the token ids, and greedy decoding as the default (each caller passes
 * its own sampling settings; greedy is the one setting every tool reproduces exactly).
 */
function generationConfig(ids: TokenIds): Record<string, unknown> {
  return { ...ids, do_sample: false };
}

/**
 * `genai_config.json` for onnxruntime-genai: the decoder file and its Optimum names, the
 * attention shape, and search defaults (greedy, no shared past/present buffer: the decoder
 * concatenates past and new keys).
 */
function genaiConfig(config: Qwen2Config, ids: TokenIds): Record<string, unknown> {
  return {
    model: {
      type: "qwen2",
      vocab_size: config.vocabSize,
      context_length: config.maxPositions,
      ...ids,
      decoder: {
        filename: `${ONNX_DIR}/${EXPORT_FILES.model}`,
        session_options: { log_id: "onnxruntime-genai", provider_options: [] },
        head_size: config.headDim,
        hidden_size: config.hiddenSize,
        num_attention_heads: config.numHeads,
        num_key_value_heads: config.numKvHeads,
        num_hidden_layers: config.numLayers,
        inputs: {
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          position_ids: "position_ids",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        },
        outputs: {
          logits: "logits",
          present_key_names: "present.%d.key",
          present_value_names: "present.%d.value",
        },
      },
    },
    search: {
      do_sample: false,
      num_beams: 1,
      num_return_sequences: 1,
      max_length: config.maxPositions,
      min_length: 0,
      temperature: 1,
      top_k: 1,
      top_p: 1,
      repetition_penalty: 1,
      length_penalty: 1,
      no_repeat_ngram_size: 0,
      diversity_penalty: 0,
      early_stopping: true,
      past_present_share_buffer: false,
    },
  };
}

// ----- tokenizer files ----------------------------------------------------------------------

/** Write (character tokenizer) or copy (HF tokenizer) the tokenizer files; returns their names. */
async function writeTokenizerFiles(dir: string, source: HfFolderSource): Promise<string[]> {
  const { tokenizer, policy } = source;
  if (tokenizer instanceof CharTokenizer) {
    await writeJson(join(dir, "tokenizer.json"), charTokenizerJson(tokenizer));
    await writeJson(
      join(dir, "tokenizer_config.json"),
      charTokenizerConfig(tokenizer, policy.config.maxPositions),
    );
    return ["tokenizer.json", "tokenizer_config.json"];
  }
  const from = source.tokenizerDir;
  if (from === undefined) {
    throw new Error(
      "writeHfModelFolder(): the tokenizer is not the character tokenizer, so its files are " +
        "copied; expected tokenizerDir, the folder holding its tokenizer.json",
    );
  }
  const present: string[] = [];
  for (const name of HF_TOKENIZER_FILES) {
    if (await isFile(join(from, name))) present.push(name);
  }
  if (!present.includes("tokenizer.json")) {
    throw new Error(`writeHfModelFolder(): ${from} has no tokenizer.json; expected HF files`);
  }
  const same = (await Deno.realPath(from)) === (await Deno.realPath(dir));
  if (!same) { for (const name of present) await Deno.copyFile(join(from, name), join(dir, name)); }
  return present;
}

/**
 * The character tokenizer as an HF `tokenizer.json` (see the module doc): BPE over single
 * characters without merges, the special tokens as added tokens, `<bos>` by post-processor, a
 * `Fuse` decoder.
 *
 * @param tokenizer The character tokenizer.
 * @returns The parsed `tokenizer.json` object.
 * @example
 * ```ts
 * import { charTokenizerJson } from "./_export.ts";
 * import { tinyAimeTokenizer } from "../data/tokenizer_char.ts";
 * const json = charTokenizerJson(tinyAimeTokenizer());
 * (json.model as { vocab: Record<string, number> }).vocab["0"]; // 3
 * ```
 */
export function charTokenizerJson(tokenizer: CharTokenizer): Record<string, unknown> {
  const vocab = Object.fromEntries(tokenizer.vocab().map((token, id) => [token, id]));
  const bos = SPECIAL_TOKENS[tokenizer.bosId];
  const special = (id: string, type_id = 0) => ({ SpecialToken: { id, type_id } });
  const sequence = (id: string, type_id = 0) => ({ Sequence: { id, type_id } });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [special(bos), sequence("A")],
      pair: [special(bos), sequence("A"), sequence("B", 1)],
      special_tokens: { [bos]: { id: bos, ids: [tokenizer.bosId], tokens: [bos] } },
    },
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}

/**
 * Chat template of the character tokenizer: `<bos>`, then every turn's content and a newline, so
 * one user turn holding a problem renders as the built-in task's prompt (problem, newline).
 */
export const CHAR_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ message['content'] }}\n{% endfor %}";

/**
 * The character tokenizer's `tokenizer_config.json`: special tokens, the chat template, no
 * clean-up of spaces around punctuation.
 *
 * @param tokenizer The character tokenizer.
 * @param maxLength The model's context (`model_max_length`).
 * @returns The parsed `tokenizer_config.json` object.
 */
export function charTokenizerConfig(
  tokenizer: CharTokenizer,
  maxLength: number,
): Record<string, unknown> {
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: SPECIAL_TOKENS[tokenizer.bosId],
    eos_token: SPECIAL_TOKENS[tokenizer.eosId],
    pad_token: SPECIAL_TOKENS[tokenizer.padId],
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: maxLength,
    chat_template: CHAR_CHAT_TEMPLATE,
  };
}

// ----- files --------------------------------------------------------------------------------

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
}

async function isFile(path: string): Promise<boolean> {
  return await Deno.stat(path).then((s) => s.isFile, () => false);
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) out.push(...await listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}
