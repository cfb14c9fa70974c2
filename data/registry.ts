/**
 * Benchmark and training-set registry: where each dataset comes from, what the file we use looks
 * like (rows, sha256), how its fields map to {@link ProblemRow}, how answers are extracted from
 * responses to it, and its license.
 *
 * The JSONL benchmarks are the normalised files described in `../shared/datasets/README.md`
 * (row counts and sha256 copied from its table). They were built from the pinned upstream files
 * named in `upstream`, but no public URL serves the normalised bytes, so their `url` is null and
 * `fetch-data` needs `--base-url` pointing at a mirror of that folder.
 *
 * @module
 */

import { BOXED_EXTRACTION, type ExtractorConfig, REWARD_EXTRACTION } from "./extract.ts";
import type { FieldMap } from "./fields.ts";

/** Where a dataset was taken from. */
export interface UpstreamSource {
  /** Repository (`owner/name` on GitHub, or a Hugging Face dataset id). */
  repo: string;
  /** Commit the file was read at, or a ref name where no commit is pinned. */
  commit: string;
  /** Path inside the repository. */
  path: string;
  /** What was changed on the way to our file, if anything. */
  note?: string;
}

/** One registered dataset. */
export interface DatasetEntry {
  /** Registry key, e.g. `aime24`. */
  name: string;
  /** One line about the contents. */
  description: string;
  /** Evaluation benchmark or training set. */
  role: "eval" | "train";
  /** File format. */
  format: "jsonl" | "parquet";
  /** File name, under the data directory (`.sent/datasets/` by default). */
  file: string;
  /** Expected number of rows, or null when not known (then only reported, not verified). */
  rows: number | null;
  /** sha256 of the file as distributed, or null when not known (then not verified). */
  sha256: string | null;
  /** Public URL that serves exactly this file, or null when there is none. */
  url: string | null;
  /** Provenance. */
  upstream: UpstreamSource;
  /** How records map to rows. */
  fields: FieldMap;
  /** Drop repeated problems when loading (counted and reported). */
  dedupe?: boolean;
  /** How answers are extracted from responses to this dataset. */
  extraction: ExtractorConfig;
  /** License of the data as far as known. */
  license: string;
}

const QWEN_EVAL = {
  repo: "QwenLM/Qwen2.5-Math",
  commit: "a45202bd16f1ec06f433442dc1152d0074773465",
};
const STANDARD_FIELDS: FieldMap = {
  id: "id",
  problem: "problem",
  answer: "answer",
  solution: "solution",
};

/** The registry, in the order reports list benchmarks. */
export const REGISTRY: readonly DatasetEntry[] = [
  {
    name: "aime24",
    description: "AIME 2024 I and II, 30 integer-answer problems with AoPS solutions",
    role: "eval",
    format: "jsonl",
    file: "aime24.jsonl",
    rows: 30,
    sha256: "653b6becc3040aebb3f696c7528fa94bfe414cd5766c5e12c046d42e762ee643",
    url: null,
    upstream: {
      ...QWEN_EVAL,
      path: "evaluation/data/aime24/test.jsonl",
      note: "answers without leading zeros; rows sorted by contest and problem number",
    },
    fields: STANDARD_FIELDS,
    extraction: BOXED_EXTRACTION,
    license: "MIT (Qwen2.5-Math evaluation harness); problems © MAA",
  },
  {
    name: "aime25",
    description: "AIME 2025 I and II, 30 integer-answer problems (no solutions)",
    role: "eval",
    format: "jsonl",
    file: "aime25.jsonl",
    rows: 30,
    sha256: "2c21cca7ccabc86c0567ad9007283d45f7f301efc36fb81aef1ab649f93a2e5b",
    url: null,
    upstream: {
      repo: "inclusionAI/AReaL",
      commit: "f55fe685c661b0117d888fcae47d6f46e9a85087",
      path: "evaluation/data/aime25/test.jsonl",
      note: "raw sha256 b4e273c0…; lost backslashes restored (\\f, \\t, \\\\)",
    },
    fields: { id: "id", problem: "problem", answer: "answer" },
    extraction: BOXED_EXTRACTION,
    license: "Apache-2.0 (AReaL); problems © MAA",
  },
  {
    name: "amc23",
    description: "AMC 12 2023 A and B, 40 problems rewritten with numeric answers",
    role: "eval",
    format: "jsonl",
    file: "amc23.jsonl",
    rows: 40,
    sha256: "d11fb1544ce618cfa7b74a631df299b21cba77dd22b746928eca794a3f217331",
    url: null,
    upstream: {
      ...QWEN_EVAL,
      path: "evaluation/data/amc23/test.jsonl",
      note: "float answers written as integers",
    },
    fields: { id: "id", problem: "problem", answer: "answer" },
    extraction: BOXED_EXTRACTION,
    license: "MIT (Qwen2.5-Math evaluation harness); problems © MAA",
  },
  {
    name: "math500",
    description: "MATH-500 test subset (PRM800K split), levels 1–5, 7 subjects",
    role: "eval",
    format: "jsonl",
    file: "math500.jsonl",
    rows: 500,
    sha256: "3fe68ca2c1b94f9381a16527afdebf60247d7d364657d11e3d8d8db539cabac3",
    url: null,
    upstream: {
      repo: "hkust-nlp/simpleRL-reason",
      commit: "cf1c7858bfc145a27aa733e75d930d34f0d318a6",
      path: "examples/simplelr_math_eval/data/math500/test.jsonl",
      note:
        "byte-identical to openai/prm800k math_splits/test.jsonl; fields renamed (unique_id → id)",
    },
    fields: { ...STANDARD_FIELDS, level: "level" },
    extraction: BOXED_EXTRACTION,
    license: "MIT",
  },
  {
    name: "minerva_math",
    description:
      "Minerva / MIT OCW quantitative problems, 272; answer = last \\boxed{} of the solution",
    role: "eval",
    format: "jsonl",
    file: "minerva_math.jsonl",
    rows: 272,
    sha256: "968e3bea0571579869741137939879b75445dbfc82702713cac583748a71205d",
    url: null,
    upstream: { ...QWEN_EVAL, path: "evaluation/data/minerva_math/test.jsonl" },
    fields: STANDARD_FIELDS,
    extraction: BOXED_EXTRACTION,
    license: "MIT (harness); MIT OCW material is generally CC BY-NC-SA",
  },
  {
    name: "olympiadbench",
    description: "OlympiadBench English text-only open-ended maths, 675",
    role: "eval",
    format: "jsonl",
    file: "olympiadbench.jsonl",
    rows: 675,
    sha256: "99c081c1b52ea9ac473d14e73faacec775f480c487c05b0e2063b9a94c80d10b",
    url: null,
    upstream: {
      ...QWEN_EVAL,
      path: "evaluation/data/olympiadbench/test.jsonl",
      note: "answer = final_answer[0] without $",
    },
    fields: STANDARD_FIELDS,
    extraction: BOXED_EXTRACTION,
    license: "MIT (harness); see OpenBMB/OlympiadBench for the original data",
  },
  {
    name: "olympiadbench_numerical",
    description: "OlympiadBench subset with one numerical answer, 509",
    role: "eval",
    format: "jsonl",
    file: "olympiadbench_numerical.jsonl",
    rows: 509,
    sha256: "ae2e019336082dd8765b51828071911ade116aa05a92a9fa172683ba8fb155a0",
    url: null,
    upstream: {
      ...QWEN_EVAL,
      path: "evaluation/data/olympiadbench/test.jsonl",
      note: "answer_type Numerical, single answer",
    },
    fields: STANDARD_FIELDS,
    extraction: BOXED_EXTRACTION,
    license: "MIT (harness); see OpenBMB/OlympiadBench for the original data",
  },
  {
    name: "math_train",
    description:
      "MATH training split, 7,498 of 7,500 problems (2 with an empty \\boxed{} dropped upstream of us)",
    role: "train",
    format: "jsonl",
    file: "math_train.jsonl",
    rows: 7498,
    sha256: "bd65b7e63eea116028a46d75d88656e78615d495e65359e3c9d2b35efbb39b53",
    url: null,
    upstream: {
      repo: "aiwaves-cn/agents",
      commit: "e8c4e3c2d19739d3dff59e577d1c97090cc15f59",
      path: "src/agents/datasets/data/math/train/<subject>/<n>.json",
      note: "7,500 per-problem files joined; answer = last \\boxed{} of the solution",
    },
    fields: { ...STANDARD_FIELDS, level: "level" },
    extraction: REWARD_EXTRACTION,
    license: "MIT (MATH, Hendrycks et al. 2021); repository Apache-2.0",
  },
  {
    name: "dapo_math_17k",
    description:
      "DAPO-Math-17k training prompts (prompt already carries the `Answer:` instruction)",
    role: "train",
    format: "parquet",
    file: "dapo-math-17k.parquet",
    // Neither the row count nor the checksum of this file could be confirmed here. The Hub lists
    // it in the 1M–10M rows size class (each of the ~17.9k problems appears many times), so rows
    // are deduplicated by problem text on load and the number dropped is reported.
    rows: null,
    sha256: null,
    url:
      "https://huggingface.co/datasets/BytedTsinghua-SIA/DAPO-Math-17k/resolve/main/data/dapo-math-17k.parquet",
    upstream: {
      repo: "BytedTsinghua-SIA/DAPO-Math-17k (Hugging Face)",
      commit: "main",
      path: "data/dapo-math-17k.parquet",
    },
    fields: {
      id: "extra_info.index",
      problem: "prompt.0.content",
      answer: "reward_model.ground_truth",
    },
    dedupe: true,
    extraction: REWARD_EXTRACTION,
    license: "Apache-2.0",
  },
];

/**
 * Look up a registered dataset.
 *
 * @param name Registry key.
 * @returns The entry.
 * @throws Error listing the known names when `name` is not registered.
 */
export function datasetEntry(name: string): DatasetEntry {
  const entry = REGISTRY.find((e) => e.name === name);
  if (entry === undefined) {
    throw new Error(
      `unknown dataset "${name}"; registered: ${REGISTRY.map((e) => e.name).join(", ")}`,
    );
  }
  return entry;
}
