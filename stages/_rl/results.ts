/**
 * `results.json`: the evaluation results of a run, the one contract between the `evaluate` stage
 * and the reports. Pure assembly and validation; no I/O.
 *
 * Schema `sent-results/1` (percent values, 0–100; `…` = more entries of the same form):
 *
 * ```
 * { "schema": "sent-results/1",
 *   "ks": [1, 2, 4, 8, 16],                         // the k values asked for, ascending
 *   "sets": {
 *     "<eval set>": {                               // e.g. "tiny-aime24"
 *       "<policy>": {                               // "base", "base@t0.5", …, or a method name
 *         "seeds": {
 *           "<seed>": {
 *             "n": 16,                              // samples per problem in this run
 *             "pass@k": { "1": 31.25, … },          // 100 × mean unbiased pass@k, every k ≤ n
 *             "avg@k": { "1": …, … },               // 100 × mean accuracy of the first k samples
 *             "problems": [
 *               { "id": "…", "n": 16, "c": 5,       // c = correct samples
 *                 "correct": [true, false, …],      // per sample, in sample order  [n]
 *                 "answers": ["12", null, …] } ] } },   // extracted answers, null = unparsable [n]
 *         "mean": { "pass@k": {…}, "avg@k": {…} },  // over seeds
 *         "se": { "pass@k": {…}, "avg@k": {…} } } } } }    // standard error over seeds
 * ```
 *
 * - `mean` and `se` are taken over the policy's seeds, per metric and k, for the k values every
 *   seed reports. `se` is the standard error of the mean: the sample standard deviation
 *   (divide by #seeds − 1) over √#seeds; it is 0 for a single seed (no spread can be measured;
 *   a report should show such a value without an error bar).
 * - Other fields may be added at any level (a seed's `greedy` accuracy, `lengths`, `finish`
 *   counts, a problem's token lengths); readers ignore what they do not know. The fields above
 *   are required and exactly as shown.
 * - Seed keys are decimal strings of the seed (JSON object keys); k keys likewise.
 *
 * @example
 * ```ts
 * import { assembleResults, seedResult } from "./results.ts";
 * const run = seedResult([
 *   { id: "p1", correct: [true, false], answers: ["12", "7"] },
 *   { id: "p2", correct: [false, false], answers: [null, "3"] },
 * ], [1, 2]);
 * run["pass@k"]; // { "1": 25, "2": 50 }
 * const results = assembleResults([{ set: "tiny-aime24", policy: "base", seed: 1, seedResult: run }], [1, 2]);
 * results.sets["tiny-aime24"].base.mean["pass@k"]["2"]; // 50
 * ```
 *
 * @module
 */

import { avgAtK, passAtKPercent } from "./pass_at_k.ts";

/** The schema tag of `results.json`. */
export const RESULTS_SCHEMA = "sent-results/1";

/** Default k values of the tables: Pass@k and Avg@k for k = 1, 2, 4, 8, 16. */
export const DEFAULT_KS: readonly number[] = [1, 2, 4, 8, 16];

/** Metric names in a seed result and in `mean` / `se`. */
export const METRICS = ["pass@k", "avg@k"] as const;

/** A metric name: `pass@k` or `avg@k`. */
export type MetricName = (typeof METRICS)[number];

/** A value per k, keyed by the decimal k (`{ "1": 31.25, "8": 62.5 }`). */
export type KTable = Record<string, number>;

/** Both metrics, each per k. */
export type MetricTables = Record<MetricName, KTable>;

/** What the evaluator knows about one problem: per-sample correctness and answers. */
export interface ProblemSamples {
  /** Problem id. */
  id: string;
  /** Correctness of each sample, in sample order. [n] */
  correct: readonly boolean[];
  /** Extracted answer of each sample, `null` when unparsable. [n] */
  answers: readonly (string | null)[];
  /** Optional; when given, must equal `correct.length`. */
  n?: number;
  /** Optional; when given, must equal the number of `true` in `correct`. */
  c?: number;
  /** Extra per-problem fields are kept as they are. */
  [extra: string]: unknown;
}

/** One problem in `results.json`. */
export interface ProblemRecord {
  /** Problem id. */
  id: string;
  /** Samples drawn. */
  n: number;
  /** Correct samples. */
  c: number;
  /** Correctness per sample, in sample order. [n] */
  correct: boolean[];
  /** Extracted answer per sample, `null` when unparsable. [n] */
  answers: (string | null)[];
  /** Extra fields. */
  [extra: string]: unknown;
}

/** One (set, policy, seed) evaluation run. */
export interface SeedResult {
  /** Samples per problem. */
  n: number;
  /** 100 × mean unbiased pass@k, for every requested k ≤ n. */
  "pass@k": KTable;
  /** 100 × mean accuracy over the first k samples, for every requested k ≤ n. */
  "avg@k": KTable;
  /** Per-problem records. */
  problems: ProblemRecord[];
  /** Extra fields (e.g. `greedy` accuracy, `lengths`, `finish`). */
  [extra: string]: unknown;
}

/** All seeds of one policy on one set, with their mean and standard error. */
export interface PolicyResult {
  /** Per seed, keyed by the decimal seed. */
  seeds: Record<string, SeedResult>;
  /** Mean over seeds. */
  mean: MetricTables;
  /** Standard error of the mean over seeds (0 for one seed). */
  se: MetricTables;
  /** Extra fields. */
  [extra: string]: unknown;
}

/** The whole `results.json`. */
export interface Results {
  /** Always {@link RESULTS_SCHEMA}. */
  schema: typeof RESULTS_SCHEMA;
  /** Requested k values, ascending. */
  ks: number[];
  /** Per evaluation set, per policy. */
  sets: Record<string, Record<string, PolicyResult>>;
  /** Extra fields. */
  [extra: string]: unknown;
}

/** One input of {@link assembleResults}. */
export interface ResultEntry {
  /** Evaluation set name. */
  set: string;
  /** Policy label (`base`, `base@t0.5`, a method name, …). */
  policy: string;
  /** Seed of the run. */
  seed: number | string;
  /** The run's result, from {@link seedResult} (extra fields allowed). */
  seedResult: SeedResult;
}

/** A `results.json` that does not follow the schema; the message names the path and the value. */
export class ResultsSchemaError extends Error {
  /**
   * @param path Where in the document, e.g. `sets.tiny-aime24.base.seeds.1.n`.
   * @param problem What is wrong and what was expected.
   */
  constructor(readonly path: string, problem: string) {
    super(`results.json: ${path} ${problem}`);
    this.name = "ResultsSchemaError";
  }
}

function checkKs(ks: readonly number[], what: string): void {
  if (!Array.isArray(ks) || ks.length === 0) {
    throw new RangeError(`${what}: ks is ${JSON.stringify(ks)}; expected a non-empty array`);
  }
  ks.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || (i > 0 && k <= ks[i - 1])) {
      throw new RangeError(
        `${what}: ks [${ks}] has ${k} at ${i}; expected strictly ascending integers ≥ 1`,
      );
    }
  });
}

/**
 * Mean and standard error of the mean (sample std over √count; 0 for one value).
 *
 * @param values At least one number.
 * @returns `{ mean, se }`.
 * @throws RangeError for an empty list.
 * @example
 * ```ts
 * import { meanAndSe } from "./results.ts";
 * meanAndSe([40, 50, 60]); // { mean: 50, se: 5.7735… } (std 10, √3)
 * meanAndSe([40]); // { mean: 40, se: 0 }
 * ```
 */
export function meanAndSe(values: readonly number[]): { mean: number; se: number } {
  if (values.length === 0) throw new RangeError("meanAndSe: no values; expected at least one");
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  if (values.length === 1) return { mean, se: 0 };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1);
  return { mean, se: Math.sqrt(variance / values.length) };
}

/**
 * Pass@k and Avg@k of one evaluation run from its per-problem samples.
 *
 * @param problems Per problem: id, per-sample correctness and answers; all with the same n.
 * @param ks Requested k values (ascending); those above n are left out.
 * @returns The seed result: n, `pass@k`, `avg@k` (percent) and the problem records with n and c.
 * @throws RangeError for no problems, bad ks, unequal sample counts, `answers` not matching
 *   `correct`, duplicate ids, or a given n / c that disagrees with `correct`.
 * @example
 * ```ts
 * import { seedResult } from "./results.ts";
 * const r = seedResult([{ id: "p1", correct: [false, true, false, false], answers: ["1", "2", null, "3"] }], [1, 2, 4, 8]);
 * r["pass@k"]; // { "1": 25, "2": 50, "4": 100 } (k = 8 > n = 4 is left out)
 * r["avg@k"]; // { "1": 0, "2": 50, "4": 25 }
 * r.problems[0].c; // 1
 * ```
 */
export function seedResult(
  problems: readonly ProblemSamples[],
  ks: readonly number[] = DEFAULT_KS,
): SeedResult {
  checkKs(ks, "seedResult");
  if (problems.length === 0) throw new RangeError("seedResult: no problems; expected at least one");
  const n = problems[0].correct.length;
  if (n === 0) throw new RangeError(`seedResult: problem "${problems[0].id}" has no samples`);
  const ids = new Set<string>();
  const records = problems.map((p): ProblemRecord => {
    const { id, correct, answers, n: givenN, c: givenC, ...extra } = p;
    if (ids.has(id)) throw new RangeError(`seedResult: problem id "${id}" appears twice`);
    ids.add(id);
    if (correct.length !== n) {
      throw new RangeError(
        `seedResult: problem "${id}" has ${correct.length} samples; expected n = ${n} like "${
          problems[0].id
        }"`,
      );
    }
    if (answers.length !== n) {
      throw new RangeError(
        `seedResult: problem "${id}" has ${answers.length} answers for ${n} samples`,
      );
    }
    const c = correct.filter(Boolean).length;
    if (givenN !== undefined && givenN !== n) {
      throw new RangeError(`seedResult: problem "${id}" says n = ${givenN}; it has ${n} samples`);
    }
    if (givenC !== undefined && givenC !== c) {
      throw new RangeError(`seedResult: problem "${id}" says c = ${givenC}; it has ${c} correct`);
    }
    return { id, n, c, correct: [...correct], answers: [...answers], ...extra };
  });
  const usable = ks.filter((k) => k <= n);
  const correct = records.map((r) => r.correct);
  return {
    n,
    "pass@k": Object.fromEntries(usable.map((k) => [String(k), passAtKPercent(records, k)])),
    "avg@k": Object.fromEntries(usable.map((k) => [String(k), avgAtK(correct, k)])),
    problems: records,
  };
}

/** Mean and standard error over seeds, per metric, for the k keys every seed has. */
function summarizeSeeds(seeds: readonly SeedResult[], ks: readonly number[]) {
  const mean = { "pass@k": {}, "avg@k": {} } as MetricTables;
  const se = { "pass@k": {}, "avg@k": {} } as MetricTables;
  for (const metric of METRICS) {
    for (const key of ks.map(String)) {
      if (!seeds.every((s) => typeof s[metric][key] === "number")) continue;
      const stats = meanAndSe(seeds.map((s) => s[metric][key]));
      mean[metric][key] = stats.mean;
      se[metric][key] = stats.se;
    }
  }
  return { mean, se };
}

/**
 * Build `results.json` from the runs of an evaluation: group by set and policy, add mean and
 * standard error over seeds, and validate the result.
 *
 * @param entries One per (set, policy, seed) run; order decides the order of keys in the file.
 * @param ks The requested k values (ascending), written to `ks`.
 * @returns The validated document.
 * @throws RangeError for a repeated (set, policy, seed) or bad ks; ResultsSchemaError when a
 *   seed result does not fit the schema (e.g. pass@k that disagrees with its problems).
 * @example
 * ```ts
 * import { assembleResults, seedResult } from "./results.ts";
 * const run = (c: boolean[]) => seedResult([{ id: "p", correct: c, answers: c.map(String) }], [1]);
 * const out = assembleResults([
 *   { set: "s", policy: "sent", seed: 1, seedResult: run([true, false]) },
 *   { set: "s", policy: "sent", seed: 2, seedResult: run([false, false]) },
 * ], [1]);
 * out.sets.s.sent.mean["avg@k"]; // { "1": 50 }
 * out.sets.s.sent.se["avg@k"]; // { "1": 50 } (std 70.71 / √2)
 * ```
 */
export function assembleResults(
  entries: readonly ResultEntry[],
  ks: readonly number[] = DEFAULT_KS,
): Results {
  checkKs(ks, "assembleResults");
  const grouped = new Map<string, Map<string, Map<string, SeedResult>>>();
  for (const { set, policy, seed, seedResult } of entries) {
    const policies = grouped.get(set) ?? new Map<string, Map<string, SeedResult>>();
    grouped.set(set, policies);
    const seeds = policies.get(policy) ?? new Map<string, SeedResult>();
    policies.set(policy, seeds);
    const key = String(seed);
    if (seeds.has(key)) {
      throw new RangeError(
        `assembleResults: set "${set}", policy "${policy}", seed ${key} appears twice`,
      );
    }
    seeds.set(key, seedResult);
  }
  const sets: Results["sets"] = {};
  for (const [set, policies] of grouped) {
    sets[set] = {};
    for (const [policy, seeds] of policies) {
      sets[set][policy] = {
        seeds: Object.fromEntries(seeds),
        ...summarizeSeeds([...seeds.values()], ks),
      };
    }
  }
  return validateResults({ schema: RESULTS_SCHEMA, ks: [...ks], sets });
}

// ---------------------------------------------------------------------------------------------
// Validation: one small check per node of the schema, each given its path.

type Json = Record<string, unknown>;

function objectAt(value: unknown, path: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ResultsSchemaError(path, `is ${describe(value)}; expected an object`);
  }
  return value as Json;
}

function describe(value: unknown): string {
  if (value === undefined) return "missing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  const text = String(typeof value === "string" ? JSON.stringify(value) : value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function integerAt(value: unknown, path: string, lo: number, hi: number): number {
  if (!Number.isInteger(value) || (value as number) < lo || (value as number) > hi) {
    throw new ResultsSchemaError(
      path,
      `is ${describe(value)}; expected an integer in [${lo}, ${hi}]`,
    );
  }
  return value as number;
}

function equalAt(value: unknown, path: string, expected: number, why: string): void {
  if (value !== expected) {
    throw new ResultsSchemaError(path, `is ${describe(value)}; expected ${expected} (${why})`);
  }
}

function arrayAt(value: unknown, path: string, length: number): unknown[] {
  if (!Array.isArray(value) || value.length !== length) {
    const got = Array.isArray(value) ? `an array of ${value.length}` : describe(value);
    throw new ResultsSchemaError(path, `is ${got}; expected an array of ${length}`);
  }
  return value;
}

/** The metric table of a seed: exactly the keys `expected`, each a percentage. */
function kTableAt(value: unknown, path: string, expected: readonly string[]): KTable {
  const table = objectAt(value, path);
  const keys = Object.keys(table);
  if (keys.length !== expected.length || !expected.every((k) => k in table)) {
    throw new ResultsSchemaError(
      path,
      `has keys [${keys}]; expected [${expected}] (every requested k ≤ n)`,
    );
  }
  for (const k of expected) {
    const v = table[k];
    if (typeof v !== "number" || !(v >= 0 && v <= 100)) {
      throw new ResultsSchemaError(
        `${path}.${k}`,
        `is ${describe(v)}; expected a percentage in [0, 100]`,
      );
    }
  }
  return table as KTable;
}

function problemAt(value: unknown, path: string, n: number): ProblemRecord {
  const p = objectAt(value, path);
  if (typeof p.id !== "string" || p.id === "") {
    throw new ResultsSchemaError(`${path}.id`, `is ${describe(p.id)}; expected a non-empty string`);
  }
  equalAt(p.n, `${path}.n`, n, "the seed's n");
  const correct = arrayAt(p.correct, `${path}.correct`, n);
  correct.forEach((x, i) => {
    if (typeof x !== "boolean") {
      throw new ResultsSchemaError(`${path}.correct.${i}`, `is ${describe(x)}; expected a boolean`);
    }
  });
  const c = correct.filter(Boolean).length;
  equalAt(p.c, `${path}.c`, c, "the number of true in correct");
  arrayAt(p.answers, `${path}.answers`, n).forEach((x, i) => {
    if (typeof x !== "string" && x !== null) {
      throw new ResultsSchemaError(
        `${path}.answers.${i}`,
        `is ${describe(x)}; expected a string or null`,
      );
    }
  });
  return p as unknown as ProblemRecord;
}

/** Recomputed values must match the stored ones (JSON keeps doubles exactly; allow rounding). */
function checkRecomputed(stored: KTable, path: string, recompute: (k: number) => number): void {
  for (const [key, value] of Object.entries(stored)) {
    const expected = recompute(Number(key));
    if (Math.abs(value - expected) > 1e-9 * Math.max(1, Math.abs(expected))) {
      throw new ResultsSchemaError(
        `${path}.${key}`,
        `is ${value}; the records give ${expected}`,
      );
    }
  }
}

function seedAt(value: unknown, path: string, ks: readonly number[]): SeedResult {
  const seed = objectAt(value, path);
  const n = integerAt(seed.n, `${path}.n`, 1, Number.MAX_SAFE_INTEGER);
  const keys = ks.filter((k) => k <= n).map(String);
  const pass = kTableAt(seed["pass@k"], `${path}.pass@k`, keys);
  const avg = kTableAt(seed["avg@k"], `${path}.avg@k`, keys);
  if (!Array.isArray(seed.problems) || seed.problems.length === 0) {
    throw new ResultsSchemaError(
      `${path}.problems`,
      `is ${describe(seed.problems)}; expected a non-empty array`,
    );
  }
  const ids = new Set<string>();
  const problems = seed.problems.map((p, i) => {
    const record = problemAt(p, `${path}.problems.${i}`, n);
    if (ids.has(record.id)) {
      throw new ResultsSchemaError(`${path}.problems.${i}.id`, `"${record.id}" appears twice`);
    }
    ids.add(record.id);
    return record;
  });
  checkRecomputed(pass, `${path}.pass@k`, (k) => passAtKPercent(problems, k));
  checkRecomputed(avg, `${path}.avg@k`, (k) => avgAtK(problems.map((p) => p.correct), k));
  return seed as SeedResult;
}

function policyAt(value: unknown, path: string, ks: readonly number[]): PolicyResult {
  const policy = objectAt(value, path);
  const seedsObject = objectAt(policy.seeds, `${path}.seeds`);
  const seeds = Object.entries(seedsObject).map(([key, s]) =>
    seedAt(s, `${path}.seeds.${key}`, ks)
  );
  if (seeds.length === 0) {
    throw new ResultsSchemaError(`${path}.seeds`, "is empty; expected at least one seed");
  }
  const expected = summarizeSeeds(seeds, ks);
  for (const part of ["mean", "se"] as const) {
    const tables = objectAt(policy[part], `${path}.${part}`);
    for (const metric of METRICS) {
      const keys = Object.keys(expected[part][metric]);
      const table = objectAt(tables[metric], `${path}.${part}.${metric}`);
      if (
        Object.keys(table).length !== keys.length ||
        !keys.every((k) => typeof table[k] === "number")
      ) {
        throw new ResultsSchemaError(
          `${path}.${part}.${metric}`,
          `has keys [${Object.keys(table)}]; expected [${keys}] (the k values every seed has)`,
        );
      }
      checkRecomputed(
        table as KTable,
        `${path}.${part}.${metric}`,
        (k) => expected[part][metric][k],
      );
    }
  }
  return policy as PolicyResult;
}

/**
 * Check that a parsed `results.json` follows schema `sent-results/1`, including that every
 * pass@k / avg@k agrees with its per-problem records and every mean / se with its seeds.
 *
 * @param json The parsed document.
 * @returns The same object, typed.
 * @throws ResultsSchemaError naming the first bad path, the value found and what was expected.
 * @example
 * ```ts
 * import { validateResults } from "./results.ts";
 * validateResults({ schema: "sent-results/1", ks: [1], sets: {} }); // ok: no sets yet
 * // validateResults({ schema: "sent-results/2" }) throws:
 * // results.json: schema is "sent-results/2"; expected "sent-results/1"
 * ```
 */
export function validateResults(json: unknown): Results {
  const root = objectAt(json, "(root)");
  if (root.schema !== RESULTS_SCHEMA) {
    throw new ResultsSchemaError(
      "schema",
      `is ${describe(root.schema)}; expected "${RESULTS_SCHEMA}"`,
    );
  }
  if (!Array.isArray(root.ks) || root.ks.length === 0) {
    throw new ResultsSchemaError("ks", `is ${describe(root.ks)}; expected a non-empty array`);
  }
  const ks = root.ks as number[];
  ks.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || (i > 0 && k <= ks[i - 1])) {
      throw new ResultsSchemaError(
        `ks.${i}`,
        `is ${describe(k)}; expected strictly ascending integers ≥ 1`,
      );
    }
  });
  const sets = objectAt(root.sets, "sets");
  for (const [set, policies] of Object.entries(sets)) {
    for (const [policy, value] of Object.entries(objectAt(policies, `sets.${set}`))) {
      policyAt(value, `sets.${set}.${policy}`, ks);
    }
  }
  return root as Results;
}
