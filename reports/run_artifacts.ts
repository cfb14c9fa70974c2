/**
 * A recorded run's artifacts, read back from the store: for each node of a run record that ran
 * or was taken from the cache, its manifest and folder; and the run's config — the report
 * node's (whose slice is the whole config) when the run has one, else the union of the slices
 * the other stages recorded.
 *
 * @example
 * ```ts ignore
 * import { runArtifacts } from "./run_artifacts.ts";
 * const { artifacts, config, gone } = await runArtifacts(store, record);
 * ```
 *
 * @module
 */

import type { RunRecord } from "../pipeline/records.ts";
import type { ArtifactStore } from "../pipeline/store.ts";
import type { ArtifactRef } from "./inputs.ts";

/** Node states that leave an artifact in the store. */
const WITH_ARTIFACT = new Set(["ran", "cached", "recomputed"]);

/** What {@link runArtifacts} returns. */
export interface RunArtifacts {
  /** Artifacts found, in the record's node order. */
  artifacts: ArtifactRef[];
  /** The run's config. */
  config: Record<string, unknown>;
  /** True when rebuilt from the stages' slices (the run has no report artifact). */
  configFromSlices: boolean;
  /** Nodes whose artifact is no longer in the store, with the reason. */
  gone: string[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge of config slices: sections merge, values of the later slice win. */
function mergeInto(target: Record<string, unknown>, slice: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(slice)) {
    if (isPlainObject(value) && isPlainObject(target[key])) {
      mergeInto(target[key] as Record<string, unknown>, value);
    } else {
      target[key] = structuredClone(value);
    }
  }
}

/** Sorted copy of a nested object's keys, so a merged config reads the same every time. */
function sortKeys(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]));
}

/**
 * Read a run's artifacts from the store.
 *
 * @param store The store the run used.
 * @param record The run record.
 * @returns Artifacts, config, and the nodes whose artifacts are gone (e.g. removed by gc).
 */
export async function runArtifacts(store: ArtifactStore, record: RunRecord): Promise<RunArtifacts> {
  const artifacts: ArtifactRef[] = [];
  const gone: string[] = [];
  for (const node of record.nodes) {
    if (!WITH_ARTIFACT.has(node.state)) continue;
    const read = await store.read(node.stage, node.key);
    if (read.manifest === null) {
      gone.push(`${node.node}: its artifact is no longer in the store (${read.reason})`);
      continue;
    }
    artifacts.push({
      node: read.manifest.node,
      stage: read.manifest.stage,
      params: read.manifest.params,
      key: read.manifest.key,
      dir: store.artifactDir(node.stage, node.key),
      manifest: read.manifest,
    });
  }
  const report = artifacts.find((a) => a.stage === "report");
  if (report) {
    return {
      artifacts,
      config: report.manifest.inputs.config as Record<string, unknown>,
      configFromSlices: false,
      gone,
    };
  }
  const config: Record<string, unknown> = {};
  for (const artifact of artifacts) {
    mergeInto(config, artifact.manifest.inputs.config as Record<string, unknown>);
  }
  const seeds = [
    ...new Set(artifacts.map((a) => a.params.seed).filter((s) => typeof s === "number")),
  ];
  if (seeds.length > 0) {
    mergeInto(config, { runtime: { seeds: (seeds as number[]).sort((a, b) => a - b) } });
  }
  return {
    artifacts,
    config: sortKeys(config) as Record<string, unknown>,
    configFromSlices: true,
    gone,
  };
}
