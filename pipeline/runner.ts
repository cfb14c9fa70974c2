/**
 * Running a graph: each selected node is taken from the store when its key is there (and, with
 * `verify`, its files re-hash to the manifest), and run otherwise. A node runs as one task, or,
 * when its stage is sharded (`node.shards`), as one task per shard not in the store followed by
 * a merge in this process. Tasks go to an executor (executor.ts: this process, local worker
 * processes, or SLURM), at most `executor.slots` at once. A failed node or shard stops new
 * starts; nodes that depended on it are skipped. Every outcome says why the node ran.
 *
 * @module
 */

import { makeArtifact } from "./context.ts";
import { type Executor, inProcessExecutor, Slots, type Task, type Ticket } from "./executor.ts";
import type { PipelineNode, ShardNode } from "./graph.ts";
import type { LockFile, NodeOutcome, ShardOutcome } from "./records.ts";
import { explainChange } from "./staleness.ts";
import type { Artifact, Device } from "./stage.ts";
import type { ArtifactStore, Manifest } from "./store.ts";
import { describeFailure, runMerge, type TaskEnv, type TaskResult } from "./task.ts";

/** Options for {@link runGraph}. */
export interface RunGraphOptions {
  /** The artifact store. */
  store: ArtifactStore;
  /** Id of this run (recorded in manifests). */
  runId: string;
  /** Worker processes of the local executor (≥ 1); with the default executor only 1 is used. */
  jobs: number;
  /** Re-hash cached artifacts and recompute corrupted ones. */
  verify: boolean;
  /** Only report what would run. */
  dryRun: boolean;
  /** Node ids to recompute even when cached (`stage NAME --force`); their shards too. */
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
  /**
   * Where tasks run, made from the run's task environment. Default: in this process, one task
   * at a time, with the whole thread budget.
   */
  executor?: (env: TaskEnv) => Executor;
}

/** Whether an artifact can be taken from the store, and if not why it runs. */
interface CacheCheck {
  manifest: Manifest | null;
  reason: string;
  replace: boolean;
}

/**
 * Run the selected nodes of a graph.
 *
 * @param selected Nodes to run, with all their ancestors, in dependency order.
 * @param options Store, executor, flags.
 * @returns One outcome per selected node, in completion order (sharded nodes list their shards).
 */
export async function runGraph(
  selected: readonly PipelineNode[],
  options: RunGraphOptions,
): Promise<NodeOutcome[]> {
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const artifacts = new Map<string, Artifact>();
  const env: TaskEnv = {
    store: options.store,
    device: options.device,
    runId: options.runId,
    versions: options.versions,
    artifacts,
  };
  const executor = (options.executor ?? ((e: TaskEnv) => inProcessExecutor(e, options.threads)))(
    env,
  );
  const slots = new Slots(executor.slots);
  const outcomes = new Map<string, NodeOutcome>();
  const pending = [...selected];
  const running = new Map<string, Promise<void>>();
  let failed = false;
  const width = Math.max(
    0,
    ...selected.flatMap((node) => [node.id, ...node.shards.map((shard) => shard.id)])
      .map((id) => id.length),
  );

  const line = (state: string, id: string, detail: string) =>
    write(`  ${state.padEnd(10)} ${id.padEnd(width)}  ${detail}`);
  const detailOf = (outcome: Omit<ShardOutcome, "shard">) =>
    outcome.state === "cached"
      ? outcome.key.slice(0, 12)
      : outcome.state === "failed"
      ? outcome.error ?? ""
      : outcome.state === "skipped" || outcome.state === "planned"
      ? outcome.reason
      : `${outcome.seconds.toFixed(2)} s`;
  const record = (outcome: NodeOutcome) => {
    outcomes.set(outcome.node, outcome);
    line(outcome.state, outcome.node, detailOf(outcome));
  };
  const stop = (result: TaskResult) => {
    failed = true;
    slots.close();
    // A bug shows its stack; bad input or data (a missing file, a bad row, a refused read)
    // is the message alone, on the node's line.
    if (result.stack) write(result.stack);
  };

  const base = (node: PipelineNode) => ({ node: node.id, stage: node.stage.name, key: node.key });

  /** The stored artifact under a key, unless forced, corrupted or (with --verify) damaged. */
  const check = async (
    stage: string,
    key: string,
    forced: boolean,
    miss: (why: string) => string,
  ) => {
    const found = await options.store.read(stage, key);
    if (forced) return { manifest: null, reason: "forced (--force)", replace: true };
    if (found.corrupt) {
      return { manifest: null, reason: `corrupted: ${found.reason}`, replace: true };
    }
    if (!found.manifest) return { manifest: null, reason: miss(found.reason), replace: false };
    const verified = options.verify
      ? await options.store.verify(stage, key)
      : { ok: true, problems: [] };
    if (verified.ok) return { manifest: found.manifest, reason: "", replace: false };
    return { manifest: null, reason: `corrupted: ${verified.problems.join("; ")}`, replace: true };
  };

  /** Run one task once its ticket holds a slot; null when the run stopped before it could start. */
  const dispatch = async (
    task: Task,
    reason: string,
    ticket: Ticket,
  ): Promise<TaskResult | null> => {
    try {
      if (!(await ticket.granted) || failed) return null;
      line("run", task.label, `(${reason})`);
      return await executor.run(task);
    } finally {
      ticket.release();
    }
  };

  const stateOf = (reason: string) => reason.startsWith("corrupted") ? "recomputed" : "ran";

  const runShard = async (
    node: PipelineNode,
    shard: ShardNode,
    forced: boolean,
  ): Promise<ShardOutcome> => {
    const ids = { shard: shard.id, key: shard.key };
    const ticket = slots.ticket();
    const found: CacheCheck = await check(node.stage.name, shard.key, forced, (why) => why)
      .catch((error) => {
        ticket.release();
        throw error;
      });
    const done = (outcome: ShardOutcome) => {
      line(outcome.state, outcome.shard, detailOf(outcome));
      return outcome;
    };
    if (found.manifest || options.dryRun) ticket.release();
    if (found.manifest) return done({ ...ids, state: "cached", reason: "", seconds: 0 });
    if (options.dryRun) return done({ ...ids, state: "planned", reason: found.reason, seconds: 0 });
    const result = await dispatch(
      {
        target: node,
        label: shard.id,
        node: node.id,
        key: node.key,
        shard: shard.index,
        threads: executor.threads,
        replace: found.replace,
      },
      found.reason,
      ticket,
    );
    if (result === null) {
      const reason = "the run stopped after a failure";
      return done({ ...ids, state: "skipped", reason, seconds: 0 });
    }
    const more = (result.attempts ?? 1) > 1 ? { attempts: result.attempts } : {};
    if (!result.ok) {
      stop(result);
      const error = result.error ?? "failed";
      return done({
        ...ids,
        state: "failed",
        reason: found.reason,
        seconds: result.seconds,
        error,
        ...more,
      });
    }
    return done({
      ...ids,
      state: stateOf(found.reason),
      reason: found.reason,
      seconds: result.seconds,
      ...more,
    });
  };

  // The ticket is taken before the first await, so slots go to nodes in graph order.
  const execute = (node: PipelineNode): Promise<void> => {
    const ticket = slots.ticket();
    return executeWith(node, ticket).finally(() => ticket.release());
  };

  const executeWith = async (node: PipelineNode, ticket: Ticket): Promise<void> => {
    const stage = node.stage.name;
    const ids = base(node);
    const forced = options.force.has(node.id);
    const found = await check(stage, node.key, forced, (why) => whyRun(node, options.lock, why));
    // A node run whole keeps its ticket for its task; otherwise it needs none.
    if (found.manifest || options.dryRun || node.shards.length > 0) ticket.release();
    if (found.manifest) {
      artifacts.set(
        node.id,
        makeArtifact(options.store.artifactDir(stage, node.key), found.manifest),
      );
      record({ ...ids, state: "cached", reason: "", seconds: 0 });
      return;
    }
    const { reason } = found;
    const t0 = performance.now();
    const seconds = () => (performance.now() - t0) / 1000;
    if (node.shards.length === 0) {
      if (options.dryRun) return record({ ...ids, state: "planned", reason, seconds: 0 });
      const result = await dispatch(
        {
          target: node,
          label: node.id,
          node: node.id,
          key: node.key,
          threads: executor.threads,
          replace: found.replace,
        },
        reason,
        ticket,
      );
      if (result === null) {
        return record({
          ...ids,
          state: "skipped",
          reason: "the run stopped after a failure",
          seconds: 0,
        });
      }
      if (!result.ok) {
        stop(result);
        return record({
          ...ids,
          state: "failed",
          reason,
          seconds: result.seconds,
          error: result.error,
        });
      }
      await remember(node);
      return record({ ...ids, state: stateOf(reason), reason, seconds: result.seconds });
    }

    // A sharded node: its shards (each cached or run as a task), then the merge, here.
    if (!options.dryRun) line("run", node.id, `(${reason}; ${node.shards.length} shards)`);
    const shards = await Promise.all(node.shards.map((shard) => runShard(node, shard, forced)));
    const nested = { shards };
    if (options.dryRun) return record({ ...ids, state: "planned", reason, seconds: 0, ...nested });
    const bad = shards.find((shard) => shard.state === "failed");
    if (bad) {
      const error = `shard ${bad.shard} failed: ${bad.error}`;
      return record({ ...ids, state: "failed", reason, seconds: seconds(), error, ...nested });
    }
    if (shards.some((shard) => shard.state === "skipped")) {
      const why = "the run stopped after a failure";
      return record({ ...ids, state: "skipped", reason: why, seconds: 0, ...nested });
    }
    try {
      await runMerge(node, env, { threads: executor.threads, replace: found.replace });
    } catch (error) {
      const failure = describeFailure(error);
      stop({ ok: false, seconds: 0, ...failure });
      const message = `merging the shards failed: ${failure.error}`;
      return record({
        ...ids,
        state: "failed",
        reason,
        seconds: seconds(),
        error: message,
        ...nested,
      });
    }
    await remember(node);
    record({ ...ids, state: stateOf(reason), reason, seconds: seconds(), ...nested });
  };

  /** Take a just-committed artifact from the store for the nodes downstream. */
  const remember = async (node: PipelineNode) => {
    const { manifest, reason } = await options.store.read(node.stage.name, node.key);
    if (!manifest) throw new Error(`${node.id}: its task succeeded but its artifact is ${reason}`);
    artifacts.set(
      node.id,
      makeArtifact(options.store.artifactDir(node.stage.name, node.key), manifest),
    );
  };

  const upstreamOf = (node: PipelineNode) => [...node.upstream.values()].flat();
  // A dry run treats every node as available so that the whole plan is listed.
  const isReady = (node: PipelineNode) =>
    upstreamOf(node).every((up) =>
      artifacts.has(up.id) || outcomes.get(up.id)?.state === "planned"
    );
  const isBlocked = (node: PipelineNode) =>
    upstreamOf(node).some((up) => ["failed", "skipped"].includes(outcomes.get(up.id)?.state ?? ""));

  try {
    while (pending.length > 0 || running.size > 0) {
      for (let i = 0; i < pending.length && !failed;) {
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
            const failure = describeFailure(error);
            stop({ ok: false, seconds: 0, ...failure });
            record({
              ...base(node),
              state: "failed",
              reason: "",
              seconds: 0,
              error: failure.error,
            });
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
  } finally {
    await executor.close();
  }
  return [...outcomes.values()];
}

/** Reason a node that is not in the store has to run. */
function whyRun(node: PipelineNode, lock: LockFile | null, missReason: string): string {
  const entry = lock?.nodes[node.id];
  if (!entry) return "new: never run";
  if (entry.key === node.key) return `artifact ${missReason}`;
  const changes = explainChange(entry.inputs, node.inputs);
  return changes.length > 0 ? changes.join("; ") : "inputs changed";
}
