/**
 * What a report is made from, read from the artifacts of one run: `results.json` (stage
 * `results`), the per-step metrics of every `train[method, seed]` node, the semantic-entropy
 * summary and token-entropy histogram of `score`, the buckets of `curriculum`, the warm-up loss
 * curve of `base`, and every artifact's manifest (for provenance).
 *
 * Reading is forgiving by design: a report of a partial run must still render. A stage that is
 * absent leaves its part `null` (or empty), and a file that cannot be read or does not follow its
 * format is recorded in `problems` with the node and file named, instead of stopping the report.
 *
 * @example
 * ```ts ignore
 * import { loadInputs } from "./inputs.ts";
 * const inputs = await loadInputs(ctx.upstream ? Object.values(ctx.upstream).flat() : [], config);
 * inputs.results?.ks; // [1, 2, 4]
 * ```
 *
 * @module
 */

import type { Params } from "../pipeline/stage.ts";
import type { Manifest } from "../pipeline/store.ts";
import { type Results, validateResults } from "../stages/_rl/results.ts";

/** An artifact as the report sees it (a stage's upstream `Artifact` fits). */
export interface ArtifactRef {
  /** Node id, e.g. `train[method=sent,seed=1]`. */
  readonly node: string;
  /** Stage name. */
  readonly stage: string;
  /** Fan-out parameters. */
  readonly params: Params;
  /** Cache key. */
  readonly key: string;
  /** Absolute artifact directory. */
  readonly dir: string;
  /** Its manifest. */
  readonly manifest: Manifest;
}

/** One row of a `metrics.jsonl`. */
export type MetricRow = Readonly<Record<string, number | string | boolean | null>>;

/** The per-step metrics of one `train[method, seed]` node. */
export interface TrainRun {
  /** Method name (`train.methods`). */
  method: string;
  /** Seed. */
  seed: number;
  /** Node id. */
  node: string;
  /** One row per rollout step, in step order. */
  rows: MetricRow[];
}

/** One bin of the semantic-entropy histogram (nats). */
export interface SeBin {
  /** Lower edge. */
  from: number;
  /** Upper edge. */
  to: number;
  /** Training problems in the bin. */
  count: number;
}

/** What the report reads from `score`. */
export interface ScoreData {
  /** SE histogram of the training problems. */
  histogram: SeBin[];
  /** The rest of `summary.json` (samples, temperature, topP, maxTokens, means, …). */
  summary: Record<string, unknown>;
  /**
   * Token-entropy histogram: `counts[i]` tokens with entropy in (edges[i−1], edges[i]]
   * (bin 0 from 0, the last bin open-ended). [E] edges, [E + 1] counts; `null` when absent.
   */
  tokenEntropy: { edges: number[]; counts: number[] } | null;
}

/** One curriculum bucket's statistics. */
export interface BucketStat {
  /** Problems. */
  count: number;
  /** Smallest SE (null when empty). */
  minSe: number | null;
  /** Largest SE. */
  maxSe: number | null;
  /** Mean SE. */
  meanSe: number | null;
}

/** What the report reads from `curriculum`. */
export interface CurriculumData {
  /** Per bucket, lowest SE first. */
  stats: BucketStat[];
  /** SE cut points between buckets. [S − 1] */
  cuts: number[];
}

/** Everything a report is built from. */
export interface ReportInputs {
  /** The resolved config of the run (or the union of the stages' slices). */
  config: Record<string, unknown>;
  /** `results.json`, validated; null when absent or invalid. */
  results: Results | null;
  /** Training metrics per (method, seed), in node order. */
  train: TrainRun[];
  /** Scoring summary; null when absent. */
  score: ScoreData | null;
  /** Curriculum buckets; null when absent. */
  curriculum: CurriculumData | null;
  /** Warm-up loss curve rows (`step`, `loss`, …); null when the base was imported or absent. */
  warmup: MetricRow[] | null;
  /** Every artifact the report saw, in the order given. */
  artifacts: ArtifactRef[];
  /** Files that could not be read as their format says, each naming node and file. */
  problems: string[];
}

async function readText(artifact: ArtifactRef, file: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(`${artifact.dir}/${file}`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

function parseJsonl(text: string, where: string): MetricRow[] {
  return text.split("\n").filter((line) => line.trim() !== "").map((line, i) => {
    try {
      return JSON.parse(line) as MetricRow;
    } catch (error) {
      throw new Error(`${where} line ${i + 1} is not JSON: ${(error as Error).message}`);
    }
  });
}

/** Read a JSON file of an artifact; null when the file does not exist. */
async function readJson<T>(artifact: ArtifactRef, file: string): Promise<T | null> {
  const text = await readText(artifact, file);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(`${file} is not JSON: ${(error as Error).message}`);
  }
}

/** What one stage's reader adds to the inputs. */
type Reader = (artifact: ArtifactRef, into: ReportInputs) => Promise<void>;

/** Per stage, how its artifact feeds the report. Stages not listed give provenance only. */
const READERS: Readonly<Record<string, Reader>> = {
  async results(artifact, into) {
    const json = await readJson<unknown>(artifact, "results.json");
    if (json === null) throw new Error("results.json is missing");
    into.results = validateResults(json);
  },
  async train(artifact, into) {
    const text = await readText(artifact, "metrics.jsonl");
    if (text === null) throw new Error("metrics.jsonl is missing");
    into.train.push({
      method: String(artifact.params.method),
      seed: Number(artifact.params.seed),
      node: artifact.node,
      rows: parseJsonl(text, "metrics.jsonl"),
    });
  },
  async score(artifact, into) {
    const summary = await readJson<Record<string, unknown>>(artifact, "summary.json");
    if (summary === null || !Array.isArray(summary.histogram)) {
      throw new Error("summary.json is missing or has no histogram");
    }
    const tokens = await readJson<{ edges: number[]; counts: number[] }>(
      artifact,
      "token_entropy.json",
    );
    if (tokens !== null && tokens.counts?.length !== (tokens.edges?.length ?? -2) + 1) {
      throw new Error(
        `token_entropy.json has ${tokens.counts?.length} counts for ${tokens.edges?.length} ` +
          "edges; expected one more count than edges",
      );
    }
    const { histogram, ...rest } = summary;
    into.score = { histogram: histogram as SeBin[], summary: rest, tokenEntropy: tokens };
  },
  async curriculum(artifact, into) {
    const json = await readJson<{ stats?: BucketStat[]; cuts?: number[] }>(
      artifact,
      "buckets.json",
    );
    if (json === null || !Array.isArray(json.stats)) {
      throw new Error("buckets.json is missing or has no stats");
    }
    into.curriculum = { stats: json.stats, cuts: json.cuts ?? derivedCuts(json.stats, into) };
  },
  async base(artifact, into) {
    const text = await readText(artifact, "metrics.jsonl");
    into.warmup = text === null ? null : parseJsonl(text, "metrics.jsonl");
  },
};

/**
 * Cut points when `buckets.json` does not list them: the configured thresholds for a thresholds
 * split, else the smallest SE of each bucket after the first (where a quantile split cuts).
 */
function derivedCuts(stats: readonly BucketStat[], inputs: ReportInputs): number[] {
  const curriculum = inputs.config.curriculum as
    | { split?: string; thresholds?: number[] }
    | undefined;
  if (curriculum?.split === "thresholds" && Array.isArray(curriculum.thresholds)) {
    return [...curriculum.thresholds];
  }
  return stats.slice(1).flatMap((s) => (s.minSe === null ? [] : [s.minSe]));
}

/** Pipeline order, so readers that depend on others (none yet) see them first. */
const ORDER = ["dataset", "base", "score", "curriculum", "train", "evaluate", "results", "report"];

/**
 * Read the report's inputs from a run's artifacts.
 *
 * @param artifacts Artifacts of the run (any stages; those without a reader give provenance).
 * @param config The run's resolved config.
 * @returns The inputs; unreadable files are listed in `problems`, never thrown.
 */
export async function loadInputs(
  artifacts: readonly ArtifactRef[],
  config: Record<string, unknown>,
): Promise<ReportInputs> {
  const inputs: ReportInputs = {
    config,
    results: null,
    train: [],
    score: null,
    curriculum: null,
    warmup: null,
    artifacts: [...artifacts],
    problems: [],
  };
  const rank = (stage: string) => (ORDER.includes(stage) ? ORDER.indexOf(stage) : ORDER.length);
  const ordered = [...artifacts].sort((a, b) => rank(a.stage) - rank(b.stage));
  for (const artifact of ordered) {
    const reader = READERS[artifact.stage];
    if (reader === undefined) continue;
    try {
      await reader(artifact, inputs);
    } catch (error) {
      inputs.problems.push(`${artifact.node}: ${(error as Error).message}`);
    }
  }
  // Code-unit order (not the locale's), so the same runs give the same bytes everywhere.
  inputs.train.sort((
    a,
    b,
  ) => (a.method < b.method ? -1 : a.method > b.method ? 1 : a.seed - b.seed));
  return inputs;
}
