/**
 * Running a graph: each selected node is taken from the store when its key is there (and, with
 * `verify`, its files re-hash to the manifest), and run otherwise. Up to `jobs` nodes whose
 * upstream nodes are done run at once. A failed node stops new starts; nodes that depended on
 * it are skipped. Every outcome says why the node ran.
 *
 * @module
 */

import { buildContext, makeArtifact } from "./context.ts";
import { isBug } from "./errors.ts";
import type { PipelineNode } from "./graph.ts";
import type { LockFile, NodeOutcome } from "./records.ts";
import { explainDenied, permitsOf } from "./permits.ts";
import { explainChange } from "./staleness.ts";
import type { Artifact, Device } from "./stage.ts";
import type { ArtifactStore } from "./store.ts";

/** Options for {@link runGraph}. */
export interface RunGraphOptions {
  /** The artifact store. */
  store: ArtifactStore;
  /** Id of this run (recorded in manifests). */
  runId: string;
  /** Nodes to run at once (≥ 1). */
  jobs: number;
  /** Re-hash cached artifacts and recompute corrupted ones. */
  verify: boolean;
  /** Only report what would run. */
  dryRun: boolean;
  /** Node ids to recompute even when cached (`stage NAME --force`). */
  force: ReadonlySet<string>;
  /** Execution provider handed to stages. */
  device: Device;
  /** ORT intra-op threads of the whole run (`runtime.threads`, else the core count). */
  threads: number;
  /** Previous lock file, to explain why nodes run. */
  lock: LockFile | null;
  /** Tool versions recorded in manifests. */
  versions: Record<string, string>;
  /** Status lines (default: stderr). */
  write?: (line: string) => void;
}

/**
 * Run the selected nodes of a graph.
 *
 * @param selected Nodes to run, with all their ancestors, in dependency order.
 * @param options Store, concurrency, flags.
 * @returns One outcome per selected node, in completion order.
 */
export async function runGraph(
  selected: readonly PipelineNode[],
  options: RunGraphOptions,
): Promise<NodeOutcome[]> {
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const artifacts = new Map<string, Artifact>();
  const outcomes = new Map<string, NodeOutcome>();
  const pending = [...selected];
  const running = new Map<string, Promise<void>>();
  let failed = false;
  const width = Math.max(0, ...selected.map((node) => node.id.length));

  const record = (outcome: NodeOutcome) => {
    outcomes.set(outcome.node, outcome);
    const detail = outcome.state === "cached"
      ? outcome.key.slice(0, 12)
      : outcome.state === "failed"
      ? outcome.error ?? ""
      : outcome.state === "skipped" || outcome.state === "planned"
      ? outcome.reason
      : `${outcome.seconds.toFixed(2)} s`;
    write(`  ${outcome.state.padEnd(10)} ${outcome.node.padEnd(width)}  ${detail}`);
  };

  const base = (node: PipelineNode) => ({ node: node.id, stage: node.stage.name, key: node.key });

  const execute = async (node: PipelineNode): Promise<void> => {
    const stage = node.stage.name;
    const ids = base(node);
    const found = await options.store.read(stage, node.key);
    let reason = "";
    let replace = found.corrupt;
    if (options.force.has(node.id)) {
      reason = "forced (--force)";
      replace = true;
    } else if (found.corrupt) {
      reason = `corrupted: ${found.reason}`;
    } else if (found.manifest) {
      const check = options.verify
        ? await options.store.verify(stage, node.key)
        : { ok: true, problems: [] };
      if (check.ok) {
        artifacts.set(
          node.id,
          makeArtifact(options.store.artifactDir(stage, node.key), found.manifest),
        );
        record({ ...ids, state: "cached", reason: "", seconds: 0 });
        return;
      }
      reason = `corrupted: ${check.problems.join("; ")}`;
      replace = true;
    } else {
      reason = whyRun(node, options.lock, found.reason);
    }
    if (options.dryRun) {
      record({ ...ids, state: "planned", reason, seconds: 0 });
      return;
    }
    write(`  ${"run".padEnd(10)} ${node.id.padEnd(width)}  (${reason})`);
    const started = new Date();
    const t0 = performance.now();
    const outDir = await options.store.createTemp(stage, node.key);
    const scratchDir = await options.store.scratchDir(stage, node.key);
    const built = buildContext(node, {
      outDir,
      scratchDir,
      device: options.device,
      // Nodes running at once share the budget; each gets at least one thread.
      threads: Math.max(1, Math.floor(options.threads / Math.max(1, options.jobs))),
      artifacts,
    });
    try {
      await node.stage.run(built.ctx);
    } catch (error) {
      built.close();
      await Deno.remove(outDir, { recursive: true }).catch(() => {});
      const message = failureMessage(error);
      // A bug shows its stack; bad input or data (a missing file, a bad row, a refused read)
      // is the message alone, on the node's line.
      if (isBug(error) && (error as Error).stack) write((error as Error).stack!);
      failed = true;
      record({
        ...ids,
        state: "failed",
        reason,
        seconds: (performance.now() - t0) / 1000,
        error: message,
      });
      return;
    }
    built.finish();
    const seconds = (performance.now() - t0) / 1000;
    const manifest = await options.store.commit(outDir, {
      stage,
      node: node.id,
      params: node.params,
      key: node.key,
      inputs: node.inputs,
      metrics: built.summary,
      timings: { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), seconds },
      versions: options.versions,
      run: options.runId,
    }, { replace });
    await options.store.removeScratch(stage, node.key);
    artifacts.set(node.id, makeArtifact(options.store.artifactDir(stage, node.key), manifest));
    const state = reason.startsWith("corrupted") ? "recomputed" : "ran";
    record({ ...ids, state, reason, seconds });
  };

  const upstreamOf = (node: PipelineNode) => [...node.upstream.values()].flat();
  // A dry run treats every node as available so that the whole plan is listed.
  const isReady = (node: PipelineNode) =>
    upstreamOf(node).every((up) =>
      artifacts.has(up.id) || outcomes.get(up.id)?.state === "planned"
    );
  const isBlocked = (node: PipelineNode) =>
    upstreamOf(node).some((up) => ["failed", "skipped"].includes(outcomes.get(up.id)?.state ?? ""));

  while (pending.length > 0 || running.size > 0) {
    for (let i = 0; i < pending.length && running.size < Math.max(1, options.jobs) && !failed;) {
      const node = pending[i];
      if (isBlocked(node)) {
        pending.splice(i, 1);
        record({
          ...base(node),
          state: "skipped",
          reason: "an upstream node failed",
          seconds: 0,
        });
      } else if (isReady(node)) {
        pending.splice(i, 1);
        const task = execute(node).catch((error) => {
          // An engine or store error around the stage (not the stage itself): fail the node.
          failed = true;
          if (isBug(error) && (error as Error).stack) write((error as Error).stack!);
          const message = failureMessage(error);
          record({ ...base(node), state: "failed", reason: "", seconds: 0, error: message });
        });
        running.set(node.id, task.finally(() => running.delete(node.id)));
      } else {
        i++;
      }
    }
    if (running.size === 0) {
      for (const node of pending.splice(0)) {
        record({
          ...base(node),
          state: "skipped",
          reason: failed ? "the run stopped after a failure" : "upstream not available",
          seconds: 0,
        });
      }
      break;
    }
    await Promise.race(running.values());
  }
  return [...outcomes.values()];
}

/** One line for a failure: the message, with Deno's "--allow-…" advice put in our words. */
function failureMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return explainDenied(message.split("\n")[0], permitsOf("pipeline"));
}

/** Reason a node that is not in the store has to run. */
function whyRun(node: PipelineNode, lock: LockFile | null, missReason: string): string {
  const entry = lock?.nodes[node.id];
  if (!entry) return "new: never run";
  if (entry.key === node.key) return `artifact ${missReason}`;
  const changes = explainChange(entry.inputs, node.inputs);
  return changes.length > 0 ? changes.join("; ") : "inputs changed";
}
