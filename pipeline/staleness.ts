/**
 * Why a node is not cached. Compares a node's current inputs with the inputs recorded in the
 * lock file for the same node id, cheapest and most specific first (as DVC's `Stage.changed`
 * does): engine, config keys, source files, pinned packages, then upstream keys. In Dagster's
 * words the source files are the node's *code version* and the upstream keys its *data version*.
 *
 * @module
 */

import type { NodeInputs } from "./cache_key.ts";
import type { PipelineGraph, PipelineNode } from "./graph.ts";
import type { LockFile } from "./records.ts";
import type { ArtifactStore } from "./store.ts";

/** Cached, or not and why. */
export type NodeFreshness = "cached" | "stale" | "new" | "missing";

/** A node's status line. */
export interface NodeStatus {
  /** Node id. */
  node: string;
  /** Stage name. */
  stage: string;
  /** Current cache key. */
  key: string;
  /** `cached`: artifact present; `stale`: inputs changed since the lock file; `new`: never run;
   * `missing`: same key as the lock file but the artifact is gone. */
  state: NodeFreshness;
  /** One line per reason (empty when cached). */
  reasons: string[];
  /** A sharded node that is not cached: whether each shard's artifact is in the store. */
  shards?: ShardStatus[];
}

/** Whether one shard of a node that is not cached is in the store. */
export interface ShardStatus {
  /** Shard id, e.g. `score#3/8`. */
  shard: string;
  /** Cache key of its artifact. */
  key: string;
  /** True when its artifact is in the store (the next run takes it from there). */
  cached: boolean;
}

/** One comparison: a part of the inputs and how to describe its changes. */
interface InputRule {
  name: string;
  explain(before: NodeInputs, after: NodeInputs): string[];
}

/** Comparisons in the order they are reported. */
const INPUT_RULES: readonly InputRule[] = [
  {
    name: "engine",
    explain: (before, after) =>
      diffFlat(before.engine, after.engine).map(([key, a, b]) => `engine ${key}: ${a} → ${b}`),
  },
  {
    name: "config",
    explain: (before, after) =>
      diffFlat(flatten(before.config), flatten(after.config)).map(([key, a, b]) =>
        `config ${key}: ${a} → ${b}`
      ),
  },
  {
    name: "code",
    explain: (before, after) =>
      diffFlat(before.code.files, after.code.files).map(([file, a, b]) =>
        a === "(absent)"
          ? `source file ${file} added`
          : b === "(absent)"
          ? `source file ${file} no longer imported`
          : `source file ${file} changed`
      ),
  },
  {
    name: "packages",
    explain: (before, after) => {
      const was = new Set(before.code.packages);
      const now = new Set(after.code.packages);
      return [
        ...[...now].filter((p) => !was.has(p)).map((p) => `package ${p} added`),
        ...[...was].filter((p) => !now.has(p)).map((p) => `package ${p} removed`),
      ];
    },
  },
  {
    name: "upstream",
    explain: (before, after) => {
      const changes = diffFlat(before.upstream, after.upstream);
      const added = changes.filter(([, a]) => a === "(absent)").map(([id]) => id);
      const removed = changes.filter(([, , b]) => b === "(absent)").map(([id]) => id);
      const changed = changes.filter(([, a, b]) => a !== "(absent)" && b !== "(absent)");
      const lines = changed.length <= 2
        ? changed.map(([id, a, b]) =>
          `upstream ${id} changed (${a.slice(0, 8)} → ${b.slice(0, 8)})`
        )
        : [`${changed.length} upstream nodes changed: ${listSome(changed.map(([id]) => id))}`];
      if (added.length > 0) lines.push(`upstream added: ${listSome(added)}`);
      if (removed.length > 0) lines.push(`upstream removed: ${listSome(removed)}`);
      return lines;
    },
  },
];

/**
 * Explain how a node's inputs changed.
 *
 * @param before Inputs recorded earlier (lock file or manifest).
 * @param after Current inputs.
 * @returns One line per change, in rule order.
 * @example
 * ```ts ignore
 * explainChange(lock.nodes["scale"].inputs, node.inputs);
 * // ["config fixture.scale: 2 → 3"]
 * ```
 */
export function explainChange(before: NodeInputs, after: NodeInputs): string[] {
  return INPUT_RULES.flatMap((rule) => rule.explain(before, after));
}

/**
 * Status of every node in the graph.
 *
 * @param graph Current graph.
 * @param store Artifact store.
 * @param lock Last lock file, or `null`.
 * @returns One status per node, in graph order.
 */
export async function graphStatus(
  graph: PipelineGraph,
  store: ArtifactStore,
  lock: LockFile | null,
): Promise<NodeStatus[]> {
  const out: NodeStatus[] = [];
  for (const node of graph.nodes) {
    const base = { node: node.id, stage: node.stage.name, key: node.key };
    const { manifest, reason } = await store.read(node.stage.name, node.key);
    if (manifest) {
      out.push({ ...base, state: "cached", reasons: [] });
      continue;
    }
    const shards = node.shards.length === 0 ? {} : { shards: await shardStatus(store, node) };
    const entry = lock?.nodes[node.id];
    if (!entry) {
      out.push({ ...base, state: "new", reasons: ["never run (not in the lock file)"], ...shards });
    } else if (entry.key === node.key) {
      const reasons = [`inputs unchanged but artifact ${reason}`];
      out.push({ ...base, state: "missing", reasons, ...shards });
    } else {
      const changes = explainChange(entry.inputs, node.inputs);
      const reasons = changes.length ? changes : ["inputs changed"];
      out.push({ ...base, state: "stale", reasons, ...shards });
    }
  }
  return out;
}

/** Which of a node's shards are in the store. */
async function shardStatus(store: ArtifactStore, node: PipelineNode): Promise<ShardStatus[]> {
  const out: ShardStatus[] = [];
  for (const shard of node.shards) {
    const { manifest } = await store.read(node.stage.name, shard.key);
    out.push({ shard: shard.id, key: shard.key, cached: manifest !== null });
  }
  return out;
}

type Change = [key: string, before: string, after: string];

function listSome(ids: readonly string[], limit = 3): string {
  const shown = ids.slice(0, limit).join(", ");
  return ids.length > limit ? `${shown} and ${ids.length - limit} more` : shown;
}

function diffFlat(before: object, after: object): Change[] {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const changes: Change[] = [];
  for (const key of keys) {
    const x = Object.hasOwn(a, key) ? JSON.stringify(a[key]) : "(absent)";
    const y = Object.hasOwn(b, key) ? JSON.stringify(b[key]) : "(absent)";
    if (x !== y) changes.push([key, unquote(x), unquote(y)]);
  }
  return changes;
}

function unquote(text: string): string {
  return /^"[0-9a-f]{8,}"$/.test(text) ? text.slice(1, -1) : text;
}

/** Flatten nested objects to dot paths (arrays stay values). */
function flatten(
  value: unknown,
  prefix = "",
  out: Record<string, unknown> = {},
): Record<string, unknown> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value)) {
      flatten(inner, prefix === "" ? key : `${prefix}.${key}`, out);
    }
  } else if (prefix !== "") {
    out[prefix] = value;
  }
  return out;
}
