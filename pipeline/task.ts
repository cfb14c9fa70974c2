/**
 * One unit of work of a run, done in the calling process: a whole node, one shard of a sharded
 * node, or the merge of a node's shards. Each builds the stage's context, runs the stage's code
 * into a temp directory of the store and commits it as an artifact (atomic rename), so it is the
 * same code whether the runner calls it directly (`--jobs 1`), a local worker process calls it
 * (`--jobs N`), or a SLURM job does (`--executor slurm`).
 *
 * A task is described by plain data ({@link TaskSpec}) so that it can be sent to another process:
 * the receiver rebuilds the graph from the same config and checks that its node has the key the
 * sender saw, so a task never runs against code or config that changed in between.
 *
 * @module
 */

import { buildContext, makeArtifact } from "./context.ts";
import { isBug } from "./errors.ts";
import type { NodeInputs } from "./cache_key.ts";
import type { PipelineNode, ShardNode } from "./graph.ts";
import { explainDenied, permitsOf } from "./permits.ts";
import { type Artifact, type Device, shardOf, type StageContext } from "./stage.ts";
import type { ArtifactStore, Manifest } from "./store.ts";

/** What to run: a node, or one shard of it. Plain data, sent to worker processes as JSON. */
export interface TaskSpec {
  /** Node id. */
  node: string;
  /** The node's cache key, as the sender's graph has it. */
  key: string;
  /** 0-based shard index for a shard task; absent for a whole node. */
  shard?: number;
  /** ORT intra-op threads the stage may use. */
  threads: number;
  /** Move an existing artifact with the same key aside first (`--force`, or a corrupted one). */
  replace: boolean;
}

/** How a task ended, as executors report it. */
export interface TaskResult {
  /** True when the artifact is committed. */
  ok: boolean;
  /** Wall time of the task, in seconds. */
  seconds: number;
  /** One line saying what went wrong, when it failed. */
  error?: string;
  /** The stack trace, when the failure is a bug rather than bad input or data. */
  stack?: string;
  /** A log file holding the task's output (SLURM jobs), for messages. */
  log?: string;
  /** Submissions it took, when the executor resubmits failed tasks (SLURM). */
  attempts?: number;
}

/** What a task needs from the run. */
export interface TaskEnv {
  /** The artifact store (the run holds its lock). */
  store: ArtifactStore;
  /** Execution provider. */
  device: Device;
  /** Id of the run, recorded in manifests. */
  runId: string;
  /** Tool versions, recorded in manifests. */
  versions: Record<string, string>;
  /** Committed artifacts by node id; upstream artifacts missing here are read from the store. */
  artifacts: Map<string, Artifact>;
}

/** The artifact a task writes: a node's or a shard's. */
interface Target {
  id: string;
  key: string;
  inputs: NodeInputs;
}

/**
 * Human name of a task: the node id, or the shard id.
 *
 * @param node The node.
 * @param spec The task.
 * @returns E.g. `score` or `score#2/8`.
 */
export function taskLabel(node: PipelineNode, spec: Pick<TaskSpec, "shard">): string {
  return spec.shard === undefined ? node.id : shardNodeOf(node, spec.shard).id;
}

/**
 * Run a node or one of its shards in this process and commit its artifact.
 *
 * @param node The node (from this process's graph).
 * @param spec The task; `spec.key` must be the node's key.
 * @param env Store, device, run id, versions, artifacts.
 * @returns The committed manifest.
 * @throws The stage's error when it fails (its temp directory is removed first); an Error when
 *   the node's key is not `spec.key` or the shard does not exist.
 */
export async function runTask(
  node: PipelineNode,
  spec: TaskSpec,
  env: TaskEnv,
): Promise<Manifest> {
  if (node.key !== spec.key) {
    throw new Error(
      `${node.id} has key ${node.key.slice(0, 12)}… here but ${
        spec.key.slice(0, 12)
      }… in the run that sent it: the code or config changed while the run was going`,
    );
  }
  await loadUpstream(node, env);
  if (spec.shard === undefined) {
    return await produce(node, node, spec, env, (ctx) => node.stage.run(ctx));
  }
  const shard = shardNodeOf(node, spec.shard);
  const sharding = node.stage.shards!;
  return await produce(
    node,
    shard,
    spec,
    env,
    (ctx) => sharding.run(ctx, shardOf(shard.index, shard.count)),
    { id: shard.id, key: shard.key },
  );
}

/**
 * Merge the committed shards of a node into the node's artifact, in this process.
 *
 * @param node A sharded node.
 * @param env Store, device, run id, versions, artifacts.
 * @param options Threads and whether to replace an existing artifact.
 * @returns The committed manifest.
 * @throws When a shard's artifact is missing, or the stage's merge fails.
 */
export async function runMerge(
  node: PipelineNode,
  env: TaskEnv,
  options: { threads: number; replace: boolean },
): Promise<Manifest> {
  await loadUpstream(node, env);
  const shards: Artifact[] = [];
  for (const shard of node.shards) {
    const { manifest, reason } = await env.store.read(node.stage.name, shard.key);
    if (!manifest) throw new Error(`cannot merge ${node.id}: shard ${shard.id} ${reason}`);
    shards.push(makeArtifact(env.store.artifactDir(node.stage.name, shard.key), manifest));
  }
  const spec: TaskSpec = { node: node.id, key: node.key, ...options };
  return await produce(node, node, spec, env, (ctx) => node.stage.shards!.merge(ctx, shards));
}

/**
 * The one line and, for bugs, the stack of a failure, as the runner prints them.
 *
 * @param error What was thrown.
 * @returns The message (Deno's "--allow-…" advice put in the project's words) and the stack
 *   when the error is a bug.
 */
export function describeFailure(error: unknown): { error: string; stack?: string } {
  const message = error instanceof Error ? error.message : String(error);
  const line = explainDenied(message.split("\n")[0], permitsOf("pipeline"));
  const stack = isBug(error) ? (error as Error).stack : undefined;
  return stack ? { error: line, stack } : { error: line };
}

function shardNodeOf(node: PipelineNode, index: number): ShardNode {
  const shard = node.shards[index];
  if (shard === undefined) {
    throw new Error(
      `${node.id} has ${node.shards.length} shards here; shard index ${index} does not exist`,
    );
  }
  return shard;
}

/** Put the node's upstream artifacts into `env.artifacts`, reading the store for missing ones. */
async function loadUpstream(node: PipelineNode, env: TaskEnv): Promise<void> {
  for (const ups of node.upstream.values()) {
    for (const up of ups) {
      if (env.artifacts.has(up.id)) continue;
      const { manifest, reason } = await env.store.read(up.stage.name, up.key);
      if (!manifest) throw new Error(`${node.id} needs ${up.id}, whose artifact is ${reason}`);
      env.artifacts.set(
        up.id,
        makeArtifact(env.store.artifactDir(up.stage.name, up.key), manifest),
      );
    }
  }
}

/** Build the context, run `body` into a temp directory and commit it as `target`'s artifact. */
async function produce(
  node: PipelineNode,
  target: Target,
  spec: TaskSpec,
  env: TaskEnv,
  body: (ctx: StageContext) => Promise<void>,
  shard?: { id: string; key: string },
): Promise<Manifest> {
  const stage = node.stage.name;
  const started = new Date();
  const t0 = performance.now();
  const outDir = await env.store.createTemp(stage, target.key);
  const scratchDir = await env.store.scratchDir(stage, target.key);
  const built = buildContext(node, {
    outDir,
    scratchDir,
    device: env.device,
    threads: spec.threads,
    artifacts: env.artifacts,
    shard,
  });
  try {
    await body(built.ctx);
  } catch (error) {
    built.close();
    await Deno.remove(outDir, { recursive: true }).catch(() => {});
    throw error;
  }
  built.finish();
  const seconds = (performance.now() - t0) / 1000;
  const manifest = await env.store.commit(outDir, {
    stage,
    node: target.id,
    params: node.params,
    key: target.key,
    inputs: target.inputs,
    metrics: built.summary,
    timings: { startedAt: started.toISOString(), finishedAt: new Date().toISOString(), seconds },
    versions: env.versions,
    run: env.runId,
  }, { replace: spec.replace });
  await env.store.removeScratch(stage, target.key);
  return manifest;
}
