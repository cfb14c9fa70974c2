/**
 * Cache keys (computed the way DVC computes its run cache): the sha256 of the canonical JSON of everything that determines a node's output —
 * stage name, fan-out params, code fingerprint, config slice, upstream keys and engine
 * fingerprint. The same object is stored in the manifest and the lock file, so `status` can
 * say which part changed.
 *
 * @module
 */

import { canonicalJson } from "./canonical_json.ts";
import type { CodeFingerprint, EngineFingerprint } from "./fingerprint.ts";
import { sha256 } from "./hash.ts";
import type { Params } from "./stage.ts";

/** Everything a node's cache key is computed from. */
export interface NodeInputs {
  /** Stage name. */
  stage: string;
  /** Fan-out parameters. */
  params: Params;
  /** The stage module and its local import closure. */
  code: CodeFingerprint;
  /** The resolved config slice the stage reads. */
  config: unknown;
  /** Upstream node id → its cache key. */
  upstream: Record<string, string>;
  /** Engine version, ORT version, device, dtype, Deno version. */
  engine: EngineFingerprint;
  /**
   * Only in a shard's inputs: which shard of how many. A node's own inputs never hold the shard
   * count (its config key is left out of the slice), so its key is the same for every count.
   */
  shard?: { index: number; count: number };
}

/**
 * Cache key of a node.
 *
 * @param inputs The node's inputs.
 * @returns Hex sha256 of their canonical JSON.
 */
export function cacheKey(inputs: NodeInputs): string {
  return sha256(canonicalJson(inputs));
}
