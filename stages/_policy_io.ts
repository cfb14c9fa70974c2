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

import { BOXED_EXTRACTION, type ExtractorConfig, TINY_AIME_EXTRACTION } from "../data/extract.ts";
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

/** Content of `sent_policy.json`. */
export interface PolicyDescriptor {
  format: typeof DESCRIPTOR_FORMAT;
  tokenizer: TokenizerSpec;
  /** Prompt template (`PROMPT_TEMPLATES` of data/prompts.ts) applied to every problem. */
  prompt: PromptName;
  /** How the final answer is read from a response. */
  extraction: ExtractorConfig;
}

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
  /** Text of generated ids, special tokens dropped, cut at the first EOS. */
  responseText(tokens: ArrayLike<number>): string;
  /** Options for `reward()` (data/reward.ts): the descriptor's extraction. */
  reward: RewardOptions;
}

/** Options of {@link loadStagePolicy}. */
export interface LoadStagePolicyOptions extends PolicyOptions {
  /**
   * Load the weights from this HF folder instead (a trained policy); tokenizer, prompt and
   * extraction still come from the base artifact.
   */
  weightsDir?: string;
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
 * The descriptor of an imported HF checkpoint: chat models get the `\boxed{}` chat prompt, base
 * models (no chat template) the plain-text `\boxed{}` frame; both are read with `\boxed{}`.
 *
 * @param hasChatTemplate Whether the tokenizer files carry a chat template.
 * @returns HF tokenizer, a boxed prompt, boxed extraction.
 */
export function hfPolicyDescriptor(hasChatTemplate: boolean): PolicyDescriptor {
  return {
    format: DESCRIPTOR_FORMAT,
    tokenizer: { kind: "hf" },
    prompt: hasChatTemplate ? "qwen-boxed-chat" : "boxed-base",
    extraction: BOXED_EXTRACTION,
  };
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
  if (!(typeof d.prompt === "string" && d.prompt in PROMPT_TEMPLATES)) {
    throw bad(
      `prompt is ${JSON.stringify(d.prompt)}; expected one of ${
        Object.keys(PROMPT_TEMPLATES).join(", ")
      }`,
    );
  }
  const kind = d.tokenizer?.kind;
  if (kind !== "char" && kind !== "hf") {
    throw bad(`tokenizer.kind is ${JSON.stringify(kind)}; expected "char" or "hf"`);
  }
  if (kind === "char" && typeof (d.tokenizer as { alphabet?: unknown }).alphabet !== "string") {
    throw bad("tokenizer.alphabet is missing; expected the characters in id order");
  }
  if (!Array.isArray(d.extraction?.order)) {
    throw bad("extraction.order is missing; expected a list of extractor names");
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

/**
 * Prompt ids of a problem under a template.
 *
 * @param tokenizer The tokenizer.
 * @param template Template name.
 * @param problem Problem text.
 * @returns Token ids.
 */
export function promptIdsOf(tokenizer: Tokenizer, template: PromptName, problem: string): number[] {
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
  return tokenizer.encode(hf.applyChatTemplate(t.render(problem)));
}

/**
 * Load the policy of a `base` artifact (or of a folder laid out the same way).
 *
 * @param source The `base` artifact, or the path of a folder holding `policy/`.
 * @param options Device, threads, and optionally other weights (a trained policy).
 * @returns Policy, tokenizer, prompt builder, response decoder and reward options.
 * @throws Error naming the file at fault (descriptor, config, weights or tokenizer).
 */
export async function loadStagePolicy(
  source: Artifact | string,
  options: LoadStagePolicyOptions = {},
): Promise<StagePolicy> {
  const dir = typeof source === "string" ? `${source}/${POLICY_DIR}` : source.path(POLICY_DIR);
  const descriptor = await readPolicyDescriptor(dir);
  const tokenizer = await loadPolicyTokenizer(dir, descriptor.tokenizer);
  const { weightsDir, ...policyOptions } = options;
  const policy = await Policy.load(weightsDir ?? dir, policyOptions);
  if (tokenizer.vocabSize > policy.config.vocabSize) {
    await policy.release();
    throw new Error(
      `${weightsDir ?? dir}: the model has ${policy.config.vocabSize} token ids, fewer than ` +
        `the tokenizer's ${tokenizer.vocabSize}`,
    );
  }
  return {
    policy,
    tokenizer,
    descriptor,
    promptIds: (problem) => promptIdsOf(tokenizer, descriptor.prompt, problem),
    responseText: (tokens) => tokenizer.decode(tokens, { skipSpecial: true, stopAtEos: true }),
    reward: { extraction: descriptor.extraction },
  };
}
