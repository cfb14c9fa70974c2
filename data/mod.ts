/**
 * Data for the SENT pipeline: the built-in tiny-AIME task, benchmark registry and loaders,
 * answer extraction, math-equivalence grading, prompts and the character tokenizer.
 *
 * @example
 * ```ts
 * import { extractAnswer, loadDataset, mathEqual } from "./mod.ts";
 * const { rows, extraction } = await loadDataset("tiny-aime24", { size: 2 });
 * const got = extractAnswer(rows[0].solution!, extraction);
 * got.kind === "answer" && mathEqual(got.value, rows[0].answer); // true
 * ```
 *
 * @module
 */

export * from "./rows.ts";
export * from "./tokenizer_char.ts";
export * from "./tiny_aime/mod.ts";
export * from "./extract.ts";
export * from "./grade/mod.ts";
export * from "./load_errors.ts";
export * from "./load_jsonl.ts";
export * from "./load_parquet.ts";
export * from "./fields.ts";
export * from "./registry.ts";
export * from "./load_dataset.ts";
export * from "./fetch.ts";
export * from "./prompts.ts";
