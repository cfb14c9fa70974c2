/**
 * Prompt templates: the built-in task's (what the tiny policy sees before its trace) and those for
 * real models, as plain text for base models or as one user message for chat models (the model's
 * own chat template is applied elsewhere, with its tokenizer).
 *
 * @example
 * ```ts
 * import { renderPrompt } from "./prompts.ts";
 * renderPrompt("qwen-boxed-chat", "What is 1+1?");
 * // [{ role: "user", content: "What is 1+1?\nPlease reason step by step, and put your final answer within \\boxed{}." }]
 * ```
 *
 * @module
 */

/** A chat message before the model's chat template is applied. */
export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** The evaluation instruction of the SENT paper's evaluation (OpenCompass math prompts). */
export const BOXED_INSTRUCTION =
  "Please reason step by step, and put your final answer within \\boxed{}.";

/** An instruction for the `Answer:` line format that the training reward reads (DAPO-style). */
export const ANSWER_LINE_INSTRUCTION =
  "Solve the problem step by step. Write the final answer alone on the last line, as `Answer: <answer>`.";

/** The opening of every DAPO-Math-17k prompt: it asks for a last line `Answer: $Answer`. */
export const DAPO_PREFIX = "Solve the following math problem step by step. The last line of your " +
  "response should be of the form Answer: $Answer (without quotes) where $Answer is the answer " +
  "to the problem.";

/** The closing line of every DAPO-Math-17k prompt. */
export const DAPO_SUFFIX = 'Remember to put your answer on its own line after "Answer:".';

/**
 * A problem in DAPO-Math-17k's training form: its opening, a blank line, the problem, a blank
 * line, its closing. A problem that already starts with the opening (a DAPO-Math-17k row) is
 * returned unchanged, so the form can be applied to any training set.
 *
 * @param problem Problem text, bare or already in DAPO form.
 * @returns The DAPO-form prompt text.
 * @example
 * ```ts
 * dapoPrompt("What is 1+1?").endsWith('after "Answer:".'); // true
 * dapoPrompt(dapoPrompt("What is 1+1?")) === dapoPrompt("What is 1+1?"); // true
 * ```
 */
export function dapoPrompt(problem: string): string {
  return problem.startsWith(DAPO_PREFIX)
    ? problem
    : `${DAPO_PREFIX}\n\n${problem}\n\n${DAPO_SUFFIX}`;
}

/** A template: plain text (tiny policy, base models) or chat messages. */
export type PromptTemplate =
  | { kind: "text"; description: string; render: (problem: string) => string }
  | { kind: "chat"; description: string; render: (problem: string) => ChatMessage[] };

/** The templates, keyed by name. */
export const PROMPT_TEMPLATES = {
  /** Built-in task: the problem and a newline; the trace (ending `#### N`) follows. */
  "tiny-aime": {
    kind: "text",
    description: "built-in task: problem then newline; the policy writes the trace and `#### N`",
    render: (problem: string) => `${problem}\n`,
  },
  /** Evaluation prompt for chat models: problem, newline, the \boxed{} instruction of the paper. */
  "qwen-boxed-chat": {
    kind: "chat",
    description: "chat models, evaluation: one user turn, problem + \\boxed{} instruction",
    render: (problem: string) => [{ role: "user", content: `${problem}\n${BOXED_INSTRUCTION}` }],
  },
  /** The same for base models, as a plain-text question/answer frame. */
  "boxed-base": {
    kind: "text",
    description: "base models: Question/Answer frame with the \\boxed{} instruction",
    render: (problem: string) => `Question: ${problem}\n${BOXED_INSTRUCTION}\nAnswer:`,
  },
  /** Training prompt for chat models asking for an `Answer:` line. */
  "answer-line-chat": {
    kind: "chat",
    description: "chat models, training: asks for a final `Answer:` line (DAPO-style reward)",
    render: (
      problem: string,
    ) => [{ role: "user", content: `${ANSWER_LINE_INSTRUCTION}\n\n${problem}` }],
  },
  /**
   * Training prompt for chat models in DAPO-Math-17k's form (asks for a last `Answer:` line,
   * which the training reward reads); DAPO-Math-17k rows, already in that form, go in unchanged.
   */
  "dapo-chat": {
    kind: "chat",
    description: "chat models, training: DAPO-Math-17k's `Answer:` form (its rows unchanged)",
    render: (problem: string) => [{ role: "user", content: dapoPrompt(problem) }],
  },
  /** The same for base models, as plain text followed by a newline. */
  "dapo-base": {
    kind: "text",
    description: "base models, training: DAPO-Math-17k's `Answer:` form as plain text",
    render: (problem: string) => `${dapoPrompt(problem)}\n`,
  },
  /** Rows whose problem text already carries its instruction (DAPO-Math-17k) go in unchanged. */
  "as-is-chat": {
    kind: "chat",
    description: "chat models: the problem text is the whole user turn (DAPO-Math-17k prompts)",
    render: (problem: string) => [{ role: "user", content: problem }],
  },
} as const satisfies Record<string, PromptTemplate>;

/** Name of a registered template. */
export type PromptName = keyof typeof PROMPT_TEMPLATES;

/**
 * Render a problem with a named template.
 *
 * @param name Template name.
 * @param problem Problem text.
 * @returns Text for text templates, messages for chat templates.
 * @throws Error listing the known names for an unknown template.
 */
export function renderPrompt(name: PromptName, problem: string): string | ChatMessage[] {
  const template: PromptTemplate | undefined = PROMPT_TEMPLATES[name];
  if (template === undefined) {
    throw new Error(
      `unknown prompt template "${name}"; expected one of ${
        Object.keys(PROMPT_TEMPLATES).join(", ")
      }`,
    );
  }
  return template.render(problem);
}

/**
 * The full warm-up (SFT) text of a built-in problem: prompt followed by its trace.
 *
 * @param problem Problem text.
 * @param solution Its step-by-step trace (ending `#### N`).
 * @returns The text the tiny policy learns to continue (add `<bos>`/`<eos>` when encoding).
 */
export function tinyAimeTrainingText(problem: string, solution: string): string {
  return `${PROMPT_TEMPLATES["tiny-aime"].render(problem)}${solution}`;
}
