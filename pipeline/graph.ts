/**
 * From stages and a config to the node graph: order the stages, expand fan-out parameters into
 * nodes, connect each node to the upstream nodes it reads, and compute every node's inputs and
 * cache key.
 *
 * @example
 * ```ts
 * import { buildGraph } from "./graph.ts";
 * import { loadConfig } from "./config.ts";
 * import { stages } from "../stages/mod.ts";
 * const graph = await buildGraph(stages, await loadConfig(), { root: Deno.cwd() });
 * for (const node of graph.nodes) console.log(node.id, node.key.slice(0, 12));
 * ```
 *
 * @module
 */

import { cacheKey, type NodeInputs } from "./cache_key.ts";
import { type ConfigValues, getPath, type ResolvedConfig } from "./config.ts";
import { configSchema, isSection } from "./config_schema.ts";
import {
  codeFingerprint,
  engineFingerprint,
  engineFingerprintFor,
  readImportMap,
  type ScannedFile,
} from "./fingerprint.ts";
import type { Params, ParamValue, Stage } from "./stage.ts";

/** One shard of a sharded node: its own cached artifact. */
export interface ShardNode {
  /** Id: the node id, `#`, the 1-based index, `/`, the count, e.g. `score#3/8`. */
  id: string;
  /** 0-based index. */
  index: number;
  /** Number of shards of the node. */
  count: number;
  /** The node's inputs plus `shard: { index, count }`. */
  inputs: NodeInputs;
  /** Cache key of the shard's artifact. */
  key: string;
}

/** One node: a stage with one combination of its fan-out parameters. */
export interface PipelineNode {
  /** Id: the stage name, plus `[name=value,…]` for fanned-out stages. */
  id: string;
  /** The stage. */
  stage: Stage;
  /** Fan-out parameters. */
  params: Params;
  /** Upstream nodes, grouped by upstream stage, in declaration order. */
  upstream: ReadonlyMap<string, readonly PipelineNode[]>;
  /** The resolved config slice. */
  config: unknown;
  /** Everything the key is computed from. */
  inputs: NodeInputs;
  /** Cache key. */
  key: string;
  /**
   * Shards, when the stage declares `shards` and its count key is above 1; otherwise empty and
   * the node runs whole.
   */
  shards: readonly ShardNode[];
}

/** Nodes in dependency order. */
export interface PipelineGraph {
  /** Every node; upstream nodes always come first. */
  nodes: readonly PipelineNode[];
  /** Node id → node. */
  byId: ReadonlyMap<string, PipelineNode>;
  /** Stages in dependency order. */
  stages: readonly Stage[];
  /** Node id → nodes that read it directly. */
  downstream: ReadonlyMap<string, readonly PipelineNode[]>;
}

/** Options for {@link buildGraph}. */
export interface BuildGraphOptions {
  /** Project root (deno.json, node_modules; code paths are relative to it). */
  root: string;
}

/**
 * Build the node graph.
 *
 * @param stages Registered stages (any order).
 * @param config Resolved config.
 * @param options Project root.
 * @returns Nodes in dependency order with keys.
 * @throws {Error} On duplicate stage names, unknown upstream stages, cycles, unknown config keys
 *   in `configKeys`, or fan-out keys that are not lists.
 */
export async function buildGraph(
  stages: readonly Stage[],
  config: ResolvedConfig,
  options: BuildGraphOptions,
): Promise<PipelineGraph> {
  const ordered = orderStages(stages);
  const importMap = await readImportMap(options.root);
  const scanCache = new Map<string, Promise<ScannedFile>>();
  const runtime = config.values.runtime as { device?: string; dtype?: string } | undefined;
  const engine = await engineFingerprint({
    root: options.root,
    device: runtime?.device ?? "cpu",
    dtype: runtime?.dtype ?? "float32",
  });
  const nodesByStage = new Map<string, PipelineNode[]>();
  const nodes: PipelineNode[] = [];
  for (const stage of ordered) {
    const code = await codeFingerprint(stage.module, {
      root: options.root,
      importMap,
      cache: scanCache,
    });
    const slice = configSliceOf(stage, config.values);
    const count = shardCountOf(stage, config.values);
    const stageNodes: PipelineNode[] = [];
    for (const params of expandParams(stage, config.values)) {
      const upstream = new Map<string, PipelineNode[]>();
      const upstreamKeys: Record<string, string> = {};
      for (const edge of stage.upstream) {
        const match = edge.match ?? naturalJoin;
        const chosen = nodesByStage.get(edge.stage)!.filter((up) => match(params, up.params));
        upstream.set(edge.stage, chosen);
        for (const up of chosen) upstreamKeys[up.id] = up.key;
      }
      const inputs: NodeInputs = {
        stage: stage.name,
        params,
        code,
        config: slice,
        upstream: upstreamKeys,
        engine: engineFingerprintFor(engine, stage.engine),
      };
      const id = nodeId(stage.name, params);
      stageNodes.push({
        id,
        stage,
        params,
        upstream,
        config: slice,
        inputs,
        key: cacheKey(inputs),
        shards: count > 1 ? shardNodes(id, inputs, count) : [],
      });
    }
    nodesByStage.set(stage.name, stageNodes);
    nodes.push(...stageNodes);
  }
  const downstream = new Map<string, PipelineNode[]>(nodes.map((node) => [node.id, []]));
  for (const node of nodes) {
    for (const ups of node.upstream.values()) {
      for (const up of ups) downstream.get(up.id)!.push(node);
    }
  }
  return {
    nodes,
    byId: new Map(nodes.map((node) => [node.id, node])),
    stages: ordered,
    downstream,
  };
}

/**
 * Id of a node: `stage` or `stage[a=1,b=x]` (parameters in declaration order).
 *
 * @param stage Stage name.
 * @param params Fan-out parameters.
 * @returns The id.
 */
export function nodeId(stage: string, params: Params): string {
  const entries = Object.entries(params);
  if (entries.length === 0) return stage;
  return `${stage}[${entries.map(([name, value]) => `${name}=${value}`).join(",")}]`;
}

/**
 * A node and every node it depends on, transitively, in dependency order.
 *
 * @param graph The graph.
 * @param targets Nodes wanted.
 * @returns The targets and their ancestors.
 */
export function withAncestors(
  graph: PipelineGraph,
  targets: readonly PipelineNode[],
): PipelineNode[] {
  const wanted = new Set<string>();
  const visit = (node: PipelineNode) => {
    if (wanted.has(node.id)) return;
    wanted.add(node.id);
    for (const ups of node.upstream.values()) for (const up of ups) visit(up);
  };
  targets.forEach(visit);
  return graph.nodes.filter((node) => wanted.has(node.id));
}

/**
 * Id of shard `index` (0-based) of `count` of a node: `score#3/8` is the third of eight.
 *
 * @param node Node id.
 * @param index 0-based shard index.
 * @param count Number of shards.
 * @returns The shard id.
 */
export function shardId(node: string, index: number, count: number): string {
  return `${node}#${index + 1}/${count}`;
}

function shardNodes(node: string, inputs: NodeInputs, count: number): ShardNode[] {
  return Array.from({ length: count }, (_, index) => {
    const shardInputs: NodeInputs = { ...inputs, shard: { index, count } };
    return {
      id: shardId(node, index, count),
      index,
      count,
      inputs: shardInputs,
      key: cacheKey(shardInputs),
    };
  });
}

/** The shard count of a stage under a config: 1 for stages that do not shard. */
function shardCountOf(stage: Stage, values: ConfigValues): number {
  if (!stage.shards) return 1;
  const value = getPath(values, stage.shards.count);
  if (value === undefined) return 1;
  if (!Number.isInteger(value) || (value as number) < 1) {
    throw new Error(
      `stage "${stage.name}" reads its shard count from config key "${stage.shards.count}", which is ${
        JSON.stringify(value)
      }; expected an integer ≥ 1`,
    );
  }
  return value as number;
}

/** Default upstream rule: parameters both sides have must be equal. */
function naturalJoin(down: Params, up: Params): boolean {
  return Object.keys(up).every((name) => !Object.hasOwn(down, name) || down[name] === up[name]);
}

function orderStages(stages: readonly Stage[]): Stage[] {
  const byName = new Map<string, Stage>();
  for (const stage of stages) {
    if (byName.has(stage.name)) {
      throw new Error(
        `stage "${stage.name}" is registered twice (${
          byName.get(stage.name)!.module
        } and ${stage.module})`,
      );
    }
    byName.set(stage.name, stage);
  }
  for (const stage of stages) {
    for (const edge of stage.upstream) {
      if (!byName.has(edge.stage)) {
        throw new Error(
          `stage "${stage.name}" has upstream "${edge.stage}", which is not registered (registered: ${
            [...byName.keys()].join(", ")
          })`,
        );
      }
    }
  }
  const ordered: Stage[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (stage: Stage, path: string[]) => {
    if (state.get(stage.name) === "done") return;
    if (state.get(stage.name) === "visiting") {
      throw new Error(`stages form a cycle: ${[...path, stage.name].join(" → ")}`);
    }
    state.set(stage.name, "visiting");
    for (const edge of stage.upstream) visit(byName.get(edge.stage)!, [...path, stage.name]);
    state.set(stage.name, "done");
    ordered.push(stage);
  };
  for (const stage of stages) visit(stage, []);
  return ordered;
}

function expandParams(stage: Stage, values: ConfigValues): Params[] {
  let combos: Record<string, ParamValue>[] = [{}];
  for (const [name, source] of Object.entries(stage.params)) {
    let options: readonly unknown[];
    if (typeof source === "function") {
      options = source(structuredClone(values));
    } else if (typeof source === "string") {
      const value = getPath(values, source);
      if (value === undefined) {
        throw new Error(
          `stage "${stage.name}" fans out "${name}" over config key "${source}", which is not set`,
        );
      }
      options = Array.isArray(value) ? value : [value];
    } else {
      options = source;
    }
    for (const option of options) {
      if (!["string", "number", "boolean"].includes(typeof option)) {
        throw new Error(
          `stage "${stage.name}" fan-out "${name}" has value ${
            JSON.stringify(option)
          }; expected strings, numbers or booleans`,
        );
      }
    }
    combos = combos.flatMap((combo) =>
      [...new Set(options)].map((option) => ({ ...combo, [name]: option as ParamValue }))
    );
  }
  return combos;
}

/**
 * The config slice of a stage. A sharded stage's shard-count key and every `neutral` key of the
 * schema are left out: results do not depend on them, so neither does the key.
 */
function configSliceOf(stage: Stage, values: ConfigValues): unknown {
  const slice = wholeSliceOf(stage, values);
  if (stage.shards) deletePath(slice, stage.shards.count);
  // Keys that say how a run executes, not what it computes (executor.*, shard counts).
  for (const [path, spec] of configSchema()) if (spec.neutral) deletePath(slice, path);
  return slice;
}

/**
 * Remove a dot path from a plain object (no-op when absent), and the objects on the way that
 * this leaves empty (a section of neutral keys only).
 */
function deletePath(value: unknown, path: string): void {
  const parts = path.split(".");
  const chain: Record<string, unknown>[] = [];
  let node = value;
  for (const part of parts.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return;
    chain.push(node as Record<string, unknown>);
    node = (node as Record<string, unknown>)[part];
  }
  if (typeof node !== "object" || node === null) return;
  const leaf = node as Record<string, unknown>;
  if (!Object.hasOwn(leaf, parts[parts.length - 1])) return;
  delete leaf[parts[parts.length - 1]];
  let child = leaf;
  for (let i = chain.length - 1; i >= 0 && Object.keys(child).length === 0; i--) {
    delete chain[i][parts[i]];
    child = chain[i];
  }
}

function wholeSliceOf(stage: Stage, values: ConfigValues): unknown {
  if (stage.configSlice) return stage.configSlice(structuredClone(values));
  const slice: ConfigValues = {};
  for (const path of stage.configKeys) {
    if (!configSchema().has(path) && !isSection(path)) {
      throw new Error(
        `stage "${stage.name}" reads config key "${path}", which is not in the schema`,
      );
    }
    const parts = path.split(".");
    let node = slice;
    for (const part of parts.slice(0, -1)) {
      node[part] ??= {};
      node = node[part] as ConfigValues;
    }
    node[parts[parts.length - 1]] = structuredClone(getPath(values, path));
  }
  return slice;
}
