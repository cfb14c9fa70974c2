/**
 * The base policy as later stages see it: one loader, {@link loadStagePolicy}, turns the `base`
 * artifact into a ready policy, its tokenizer, and how prompts are built and answers read, so
 * `score`, `train` and `evaluate` cannot disagree on any of it.
 *
 * Layout of the `base` artifact's `policy/` folder (an HF checkpoint folder that `transformers`
 * opens as it is, plus one file of ours):
 * - `config.json`, `model.safetensors` (or an index and shards): the weights (`Policy.save`);
 * - `sent_policy.json` ({@link POLICY_DESCRIPTOR}): which tokenizer, which prompt template and
 *   which answer extraction go with the weights. For the character tokenizer of the built-in
 *   task it also holds the alphabet, so the tokenizer is rebuilt from the artifact alone;
 * - for an imported checkpoint, its tokenizer files (`tokenizer.json`, `tokenizer_config.json`,
 *   …), read with the Hugging Face tokenizer;
 * - for a policy this pipeline trained (the warm-up's, and every `train` artifact's), a complete
 *   HF model folder written by `writeHfModelFolder` (stages/_export.ts): also the tokenizer files
 *   (the character tokenizer's built as `tokenizer.json`), `generation_config.json`,
 *   `onnx/model.onnx` and `genai_config.json`, so other tools open it as it is.
 *
 * Two uses, two prompts: `use: "eval"` (evaluation) renders the evaluation prompt and reads the
 * answer from `\boxed{}`; `use: "train"` (semantic-entropy scoring and RL) renders the training
 * prompt, which for an imported checkpoint is DAPO-Math-17k's form asking for a last line
 * `Answer: …`, and its reward reads that line or, failing it, the last `\boxed{}`. The built-in
 * task has one prompt and one extraction for both. Under the `opencompass-v2` grader mode the
 * evaluation of a `\boxed{}` prompt reads answers as the paper's harness does
 * ({@link rewardOptionsFor}); training rewards keep their own extraction in every mode.
 *
 * Prompts of an imported checkpoint are what the SENT paper's evaluation harness feeds its
 * engine: the chat template's text with the generation prompt appended and a leading BOS text
 * removed, then encoded, with the BOS id put back in front only when the tokenizer's own
 * encoding adds one (its `tokenizer.json` post-processor does), so the model sees one BOS or
 * none, never two. Generation stops at any of the tokenizer's EOS ids (`eos_token` and
 * `generation_config.json`'s `eos_token_id`), and responses are decoded without special tokens.
 *
 * @example
 * ```ts ignore
 * import { loadStagePolicy } from "./_policy_io.ts";
 * const bundle = await loadStagePolicy(ctx.input("base"), { device: ctx.device, threads: 2 });
 * const prompt = bundle.promptIds("3+4=?"); // [<bos>, '3', '+', '4', '=', '?', '\n']
 * await bundle.policy.release();
 * ```
 *
 * @module
 */

import {
  BOXED_EXTRACTION,
  type ExtractorConfig,
  OPENCOMPASS_V2_EXTRACTION,
  REWARD_EXTRACTION,
  TINY_AIME_EXTRACTION,
} from "../data/extract.ts";
import { PROMPT_TEMPLATES, type PromptName } from "../data/prompts.ts";
import type { RewardOptions } from "../data/reward.ts";
import type { Tokenizer } from "../data/tokenizer.ts";
import { CharTokenizer } from "../data/tokenizer_char.ts";
import { type HfTokenizer, loadHfTokenizer } from "../data/tokenizer_hf.ts";
import { Policy, type PolicyOptions } from "../kernels/policy.ts";
import type { Artifact } from "../pipeline/stage.ts";

/** Folder of the policy inside the `base` artifact (and inside `train` artifacts). */
export const POLICY_DIR = "policy";

/** Our descriptor file inside a policy folder. */
export const POLICY_DESCRIPTOR = "sent_policy.json";

/** Schema tag of the descriptor. */
export const DESCRIPTOR_FORMAT = "sent-policy/1";

/** Which tokenizer goes with the weights. */
export type TokenizerSpec =
  | {
    /** One id per character: `<pad>`, `<bos>`, `<eos>`, then the alphabet. */
    kind: "char";
    /** Characters in id order after the special tokens. */
    alphabet: string;
  }
  | {
    /** Hugging Face tokenizer files next to the weights. */
    kind: "hf";
  };

/** A prompt template and the answer extraction that goes with it. */
export interface PromptUse {
  /** Prompt template (`PROMPT_TEMPLATES` of data/prompts.ts) applied to every problem. */
  prompt: PromptName;
  /** How the final answer is read from a response. */
  extraction: ExtractorConfig;
}

/** Content of `sent_policy.json`. */
export interface PolicyDescriptor extends PromptUse {
  format: typeof DESCRIPTOR_FORMAT;
  tokenizer: TokenizerSpec;
  /**
   * Prompt and extraction of training (scoring and RL) when they differ from the evaluation's
   * (`prompt`, `extraction`); absent: the same for both.
   */
  train?: PromptUse;
}

/** What a policy is loaded for: evaluation, or training (semantic-entropy scoring and RL). */
export type PolicyUse = "eval" | "train";

/** What {@link loadStagePolicy} returns. */
export interface StagePolicy {
  /** The model, ready to run. Release it when done. */
  policy: Policy;
  /** Its tokenizer. */
  tokenizer: Tokenizer;
  /** The descriptor it was built from. */
  descriptor: PolicyDescriptor;
  /**
   * Prompt token ids of a problem: the descriptor's template, then encoding (with `<bos>` for a
   * text template when the tokenizer has one; a chat template writes its own special tokens).
   */
  promptIds(problem: string): number[];
  /**
   * Text of generated ids, special tokens dropped, cut at the first EOS id. Ids the model has but
   * the tokenizer does not (a padded embedding) have no text and are dropped.
   */
  responseText(tokens: ArrayLike<number>): string;
  /** Ids that end generation: pass them to `generate` as `eosIds`. */
  stopIds: readonly number[];
  /**
   * Options for `reward()` (data/reward.ts): the use's extraction under the grader mode
   * ({@link rewardOptionsFor}) and the mode.
   */
  reward: RewardOptions;
}

/** Options of {@link loadStagePolicy}. */
export interface LoadStagePolicyOptions extends PolicyOptions {
  /**
   * Load the weights from this HF folder instead (a trained policy); tokenizer, prompt and
   * extraction still come from the base artifact.
   */
  weightsDir?: string;
  /** Which prompt and extraction: `eval` (default) or `train`. */
  use?: PolicyUse;
  /** Grader mode of the reward (`grader.mode`; default lenient). */
  grader?: string;
}

/**
 * The descriptor of the built-in task's character-level policy.
 *
 * @param tokenizer The character tokenizer.
 * @returns Char tokenizer, `tiny-aime` prompt, `#### N` extraction.
 */
export function charPolicyDescriptor(tokenizer: CharTokenizer): PolicyDescriptor {
  return {
    format: DESCRIPTOR_FORMAT,
    tokenizer: { kind: "char", alphabet: tokenizer.alphabet },
    prompt: "tiny-aime",
    extraction: TINY_AIME_EXTRACTION,
  };
}

/**
 * The descriptor of an imported HF checkpoint. Evaluation: chat models get the paper's `\boxed{}`
 * chat prompt, base models (no chat template) the plain-text `\boxed{}` frame, both read with
 * `\boxed{}`. Training: DAPO-Math-17k's `Answer:` form (chat or plain text), read from the last
 * `Answer:` line, else the last `\boxed{}`.
 *
 * @param hasChatTemplate Whether the tokenizer files carry a chat template.
 * @returns HF tokenizer, the evaluation and the training prompt with their extractions.
 */
export function hfPolicyDescriptor(hasChatTemplate: boolean): PolicyDescriptor {
  return {
    format: DESCRIPTOR_FORMAT,
    tokenizer: { kind: "hf" },
    prompt: hasChatTemplate ? "qwen-boxed-chat" : "boxed-base",
    extraction: BOXED_EXTRACTION,
    train: { prompt: hasChatTemplate ? "dapo-chat" : "dapo-base", extraction: REWARD_EXTRACTION },
  };
}

/**
 * The prompt and extraction of a use.
 *
 * @param descriptor A policy descriptor.
 * @param use `eval` or `train`.
 * @returns The use's template and extraction (training falls back to evaluation's).
 */
export function promptUse(descriptor: PolicyDescriptor, use: PolicyUse): PromptUse {
  const { prompt, extraction } = use === "train" && descriptor.train
    ? descriptor.train
    : descriptor;
  return { prompt, extraction };
}

/**
 * Extractions that a grader mode puts in place of a `\boxed{}` evaluation extraction: the mode's
 * numbers are then the harness's in both halves, how the answer is read and how it is compared.
 */
const EVAL_EXTRACTION_OF_MODE: Readonly<Record<string, ExtractorConfig>> = {
  "opencompass-v2": OPENCOMPASS_V2_EXTRACTION,
};

/**
 * Options for `reward()` of a use under a grader mode: the use's extraction (for evaluation of a
 * prompt read with `\boxed{}` under a mode of {@link EVAL_EXTRACTION_OF_MODE}, that mode's
 * extraction instead) and the mode. Training (`train`) and the built-in task's `#### N` keep their
 * own extraction in every mode.
 *
 * @param descriptor A policy descriptor.
 * @param use `eval` or `train`.
 * @param grader Grader mode (`grader.mode`); absent: the reward's default (lenient).
 * @returns Extraction and mode for `reward()`.
 * @example
 * ```ts
 * rewardOptionsFor(hfPolicyDescriptor(true), "eval", "opencompass-v2").extraction;
 * // { order: ["opencompass_v2"] }
 * rewardOptionsFor(hfPolicyDescriptor(true), "train", "opencompass-v2").extraction;
 * // { order: ["answer_line", "boxed"] }
 * ```
 */
export function rewardOptionsFor(
  descriptor: PolicyDescriptor,
  use: PolicyUse,
  grader?: string,
): RewardOptions {
  const own = promptUse(descriptor, use).extraction;
  const readsBoxed = use === "eval" && own.order[0] === "boxed";
  const byMode = grader !== undefined && Object.hasOwn(EVAL_EXTRACTION_OF_MODE, grader)
    ? EVAL_EXTRACTION_OF_MODE[grader]
    : undefined;
  const extraction = readsBoxed && byMode !== undefined ? byMode : own;
  return { extraction, ...(grader === undefined ? {} : { mode: grader }) };
}

/**
 * Write the descriptor into a policy folder.
 *
 * @param dir The policy folder.
 * @param descriptor What goes with the weights.
 */
export async function writePolicyDescriptor(
  dir: string,
  descriptor: PolicyDescriptor,
): Promise<void> {
  await Deno.writeTextFile(
    `${dir}/${POLICY_DESCRIPTOR}`,
    JSON.stringify(descriptor, null, 2) + "\n",
  );
}

/**
 * Read and check a policy folder's descriptor.
 *
 * @param dir The policy folder.
 * @returns The descriptor.
 * @throws Error naming the file and the field that is missing or wrong.
 */
export async function readPolicyDescriptor(dir: string): Promise<PolicyDescriptor> {
  const path = `${dir}/${POLICY_DESCRIPTOR}`;
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: cannot read the policy descriptor: ${(e as Error).message}`);
  }
  const d = raw as Partial<PolicyDescriptor>;
  const bad = (what: string) => new Error(`${path}: ${what}`);
  if (d?.format !== DESCRIPTOR_FORMAT) {
    throw bad(`format is ${JSON.stringify(d?.format)}; expected "${DESCRIPTOR_FORMAT}"`);
  }
  const uses: [string, Partial<PromptUse> | undefined][] = [["", d], ["train.", d.train]];
  for (const [where, use] of uses) {
    if (use === undefined && where !== "") continue;
    if (!(typeof use?.prompt === "string" && Object.hasOwn(PROMPT_TEMPLATES, use.prompt))) {
      throw bad(
        `${where}prompt is ${JSON.stringify(use?.prompt)}; expected one of ${
          Object.keys(PROMPT_TEMPLATES).join(", ")
        }`,
      );
    }
    if (!Array.isArray(use.extraction?.order)) {
      throw bad(`${where}extraction.order is missing; expected a list of extractor names`);
    }
  }
  const kind = d.tokenizer?.kind;
  if (kind !== "char" && kind !== "hf") {
    throw bad(`tokenizer.kind is ${JSON.stringify(kind)}; expected "char" or "hf"`);
  }
  if (kind === "char" && typeof (d.tokenizer as { alphabet?: unknown }).alphabet !== "string") {
    throw bad("tokenizer.alphabet is missing; expected the characters in id order");
  }
  return d as PolicyDescriptor;
}

/** Tokenizer builders by descriptor kind. */
const TOKENIZERS: {
  [K in TokenizerSpec["kind"]]: (
    dir: string,
    spec: Extract<TokenizerSpec, { kind: K }>,
  ) => Promise<Tokenizer>;
} = {
  char: (_dir, spec) => Promise.resolve(new CharTokenizer(spec.alphabet)),
  hf: (dir) => loadHfTokenizer(dir),
};

/**
 * Build a policy folder's tokenizer.
 *
 * @param dir The policy folder.
 * @param spec The descriptor's tokenizer entry.
 * @returns The tokenizer.
 */
export function loadPolicyTokenizer(dir: string, spec: TokenizerSpec): Promise<Tokenizer> {
  return (TOKENIZERS[spec.kind] as (d: string, s: TokenizerSpec) => Promise<Tokenizer>)(dir, spec);
}

/** Options of {@link promptIdsOf}. */
export interface PromptIdsOptions {
  /**
   * Whether the tokenizer's own encoding puts a BOS in front (its post-processor does). A chat
   * prompt's leading BOS text is removed and the BOS id put back only when this is true. Default
   * true: the template's BOS is kept as one id.
   */
  addsBos?: boolean;
}

/**
 * Prompt ids of a problem under a template. Text templates: the text, with the BOS id in front
 * when the tokenizer has one. Chat templates: the model's chat template with the generation
 * prompt, a leading BOS text removed, encoded, and the BOS id in front when `addsBos`.
 *
 * @param tokenizer The tokenizer.
 * @param template Template name.
 * @param problem Problem text.
 * @param options Whether the tokenizer adds a BOS of its own.
 * @returns Token ids.
 * @throws Error when a chat template is asked of a tokenizer without one.
 */
export function promptIdsOf(
  tokenizer: Tokenizer,
  template: PromptName,
  problem: string,
  options: PromptIdsOptions = {},
): number[] {
  const t = PROMPT_TEMPLATES[template];
  if (t.kind === "text") {
    return tokenizer.encode(t.render(problem), { bos: tokenizer.bosId !== null });
  }
  const hf = tokenizer as Partial<HfTokenizer>;
  if (typeof hf.applyChatTemplate !== "function") {
    throw new Error(
      `prompt template "${template}" is a chat template; the policy's tokenizer has none`,
    );
  }
  const text = hf.applyChatTemplate(t.render(problem));
  const bos = hf.specialTokens?.bos ?? null;
  if (bos === null || bos === "" || !text.startsWith(bos)) return tokenizer.encode(text);
  const rest = tokenizer.encode(text.slice(bos.length));
  return (options.addsBos ?? true) && tokenizer.bosId !== null ? [tokenizer.bosId, ...rest] : rest;
}

/**
 * Whether a `tokenizer.json` adds a BOS token when it encodes with special tokens, as
 * `transformers` and vLLM encode a prompt: its post-processor (alone or inside a `Sequence`) is
 * a template whose single-sequence form starts with that token.
 *
 * @param tokenizerJson Parsed `tokenizer.json`.
 * @param bos The BOS token text, or null when the tokenizer has none.
 * @returns True when a BOS is added.
 * @example
 * ```ts
 * const json = { post_processor: { type: "TemplateProcessing",
 *   single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }] } };
 * tokenizerAddsBos(json, "<s>"); // true
 * tokenizerAddsBos({ post_processor: { type: "ByteLevel" } }, "<s>"); // false
 * ```
 */
export function tokenizerAddsBos(tokenizerJson: unknown, bos: string | null): boolean {
  if (bos === null) return false;
  type Processor = {
    type?: string;
    processors?: Processor[];
    single?: { SpecialToken?: { id?: string } }[];
  };
  const adds = (p: Processor | null | undefined): boolean =>
    p?.type === "Sequence"
      ? (p.processors ?? []).some(adds)
      : p?.type === "TemplateProcessing" && p.single?.[0]?.SpecialToken?.id === bos;
  return adds((tokenizerJson as { post_processor?: Processor } | null)?.post_processor);
}

/** Whether the tokenizer of a policy folder adds a BOS of its own (only HF tokenizers may). */
async function addsBosIn(dir: string, spec: TokenizerSpec, tokenizer: Tokenizer): Promise<boolean> {
  if (spec.kind !== "hf") return false;
  const json = JSON.parse(await Deno.readTextFile(`${dir}/tokenizer.json`));
  return tokenizerAddsBos(json, (tokenizer as HfTokenizer).specialTokens.bos);
}

/**
 * Load the policy of a `base` artifact (or of a folder laid out the same way).
 *
 * @param source The `base` artifact, or the path of a folder holding `policy/`.
 * @param options Device, threads, other weights (a trained policy), the use and the grader mode.
 * @returns Policy, tokenizer, prompt builder, response decoder, stop ids and reward options.
 * @throws Error naming the file at fault (descriptor, config, weights or tokenizer).
 */
export async function loadStagePolicy(
  source: Artifact | string,
  options: LoadStagePolicyOptions = {},
): Promise<StagePolicy> {
  const dir = typeof source === "string" ? `${source}/${POLICY_DIR}` : source.path(POLICY_DIR);
  const descriptor = await readPolicyDescriptor(dir);
  const tokenizer = await loadPolicyTokenizer(dir, descriptor.tokenizer);
  const addsBos = await addsBosIn(dir, descriptor.tokenizer, tokenizer);
  const { weightsDir, use = "eval", grader, ...policyOptions } = options;
  const { prompt } = promptUse(descriptor, use);
  const policy = await Policy.load(weightsDir ?? dir, policyOptions);
  if (tokenizer.vocabSize > policy.config.vocabSize) {
    await policy.release();
    throw new Error(
      `${weightsDir ?? dir}: the model has ${policy.config.vocabSize} token ids, fewer than ` +
        `the tokenizer's ${tokenizer.vocabSize}`,
    );
  }
  const stopIds = (tokenizer as Partial<HfTokenizer>).stopIds ?? [tokenizer.eosId];
  return {
    policy,
    tokenizer,
    descriptor,
    promptIds: (problem) => promptIdsOf(tokenizer, prompt, problem, { addsBos }),
    responseText: (tokens) =>
      tokenizer.decode(Array.from(tokens).filter((id) => id < tokenizer.vocabSize), {
        skipSpecial: true,
        stopAtEos: true,
      }),
    stopIds,
    reward: rewardOptionsFor(descriptor, use, grader),
  };
}
