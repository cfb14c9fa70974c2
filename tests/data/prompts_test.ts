import assert from "node:assert/strict";
import {
  BOXED_INSTRUCTION,
  DAPO_PREFIX,
  DAPO_SUFFIX,
  dapoPrompt,
  PROMPT_TEMPLATES,
  type PromptName,
  renderPrompt,
  tinyAimeTrainingText,
} from "../../data/prompts.ts";

Deno.test("renderPrompt() gives the paper's evaluation prompt as one user turn for chat models", () => {
  assert.equal(
    BOXED_INSTRUCTION,
    "Please reason step by step, and put your final answer within \\boxed{}.",
  );
  assert.deepEqual(renderPrompt("qwen-boxed-chat", "Find x."), [{
    role: "user",
    content: `Find x.\n${BOXED_INSTRUCTION}`,
  }]);
});

Deno.test("renderPrompt() gives plain text for base models and the built-in task", () => {
  assert.equal(
    renderPrompt("boxed-base", "Find x."),
    `Question: Find x.\n${BOXED_INSTRUCTION}\nAnswer:`,
  );
  assert.equal(renderPrompt("tiny-aime", "3+4=?"), "3+4=?\n");
  assert.equal(tinyAimeTrainingText("3+4=?", "3+4=7\n#### 7"), "3+4=?\n3+4=7\n#### 7");
});

Deno.test("renderPrompt() asks for an Answer: line in the training template and leaves DAPO prompts as they are", () => {
  const [message] = renderPrompt("answer-line-chat", "Find x.") as Array<{ content: string }>;
  assert.match(message.content, /`Answer: <answer>`[\s\S]*Find x\.$/);
  assert.deepEqual(renderPrompt("as-is-chat", "Solve ... Answer: $Answer"), [{
    role: "user",
    content: "Solve ... Answer: $Answer",
  }]);
});

Deno.test("renderPrompt() lists the templates for an unknown name", () => {
  assert.throws(
    () => renderPrompt("nope" as PromptName, "x"),
    /unknown prompt template "nope"; expected one of tiny-aime/,
  );
  assert.ok(Object.values(PROMPT_TEMPLATES).every((t) => t.description.length > 0));
});

Deno.test("renderPrompt() puts training problems in DAPO-Math-17k's Answer: form, once", () => {
  const [message] = renderPrompt("dapo-chat", "Find x.") as Array<{ content: string }>;
  assert.equal(message.content, `${DAPO_PREFIX}\n\nFind x.\n\n${DAPO_SUFFIX}`);
  assert.match(DAPO_PREFIX, /last line of your response should be of the form Answer: \$Answer/);
  // A DAPO-Math-17k row already carries the form: it goes in as it is.
  assert.equal(dapoPrompt(message.content), message.content);
  assert.equal(renderPrompt("dapo-base", "Find x."), `${message.content}\n`);
});
