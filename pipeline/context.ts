/**
 * Building the `ctx` a stage's `run` receives: upstream artifacts, logger, metrics writer,
 * progress reporter and seeded RNG.
 *
 * @module
 */

import type { PipelineNode } from "./graph.ts";
import { createMetricsSink } from "./metrics.ts";
import { createProgress } from "./progress.ts";
import { Rng } from "./rng.ts";
import type { Artifact, Device, Logger, StageContext } from "./stage.ts";
import type { Manifest } from "./store.ts";

/**
 * Wrap a committed artifact for a downstream stage.
 *
 * @param dir Artifact directory.
 * @param manifest Its manifest.
 * @returns The artifact view.
 */
export function makeArtifact(dir: string, manifest: Manifest): Artifact {
  const path = (file: string) => {
    if (file.startsWith("/") || file.split("/").includes("..")) {
      throw new Error(`artifact ${manifest.node}: "${file}" must be a path inside the artifact`);
    }
    return `${dir}/${file}`;
  };
  return {
    node: manifest.node,
    stage: manifest.stage,
    params: manifest.params,
    key: manifest.key,
    dir,
    manifest,
    path,
    async readJson<T>(file: string): Promise<T> {
      const text = await Deno.readTextFile(path(file));
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new Error(
          `artifact ${manifest.node}: ${file} is not valid JSON: ${(error as Error).message}`,
        );
      }
    },
    readText: (file: string) => Deno.readTextFile(path(file)),
  };
}

/** A context plus what the runner needs after `run` returns. */
export interface BuiltContext {
  /** The context handed to the stage. */
  ctx: StageContext;
  /** Summary metrics gathered by `ctx.metrics.summary`. */
  summary: Record<string, unknown>;
  /** After `run` succeeded: put the metrics rows into the artifact directory. */
  finish(): void;
  /** After `run` failed: close the metrics file. */
  close(): void;
}

/** Options for {@link buildContext}. */
export interface BuildContextOptions {
  /** Temp directory that becomes the artifact. */
  outDir: string;
  /** Per-key scratch directory. */
  scratchDir: string;
  /** Execution provider. */
  device: Device;
  /** ORT intra-op threads of this node. */
  threads: number;
  /** Upstream artifacts by node id. */
  artifacts: ReadonlyMap<string, Artifact>;
  /** Where log lines go (default stderr). */
  write?: (line: string) => void;
  /**
   * Run as one shard of the node: `ctx.node`, `ctx.key`, the log prefix and `ctx.rng`'s seed
   * are the shard's.
   */
  shard?: { id: string; key: string };
}

/**
 * Build the context of one node.
 *
 * @param node The node about to run.
 * @param options Directories, device and upstream artifacts.
 * @returns The context and its finishing hooks.
 */
export function buildContext(node: PipelineNode, options: BuildContextOptions): BuiltContext {
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const id = options.shard?.id ?? node.id;
  const log: Logger = {
    info: (message) => write(`[${id}] ${message}`),
    warn: (message) => write(`[${id}] warning: ${message}`),
  };

  const metrics = createMetricsSink(options.scratchDir, id);

  const upstream: Record<string, Artifact[]> = {};
  for (const [stage, nodes] of node.upstream) {
    upstream[stage] = nodes.map((up) => options.artifacts.get(up.id)!);
  }

  const ctx: StageContext = {
    node: id,
    key: options.shard?.key ?? node.key,
    params: node.params,
    config: structuredClone(node.config) as Record<string, unknown>,
    device: options.device,
    threads: options.threads,
    outDir: options.outDir,
    scratchDir: options.scratchDir,
    rng: Rng.fromSeed(id),
    log,
    progress: (total, label = "") =>
      createProgress(total, { label: label ? `[${id}] ${label}` : `[${id}]` }),
    metrics: metrics.writer,
    upstream,
    input(stage) {
      const list = upstream[stage];
      if (list === undefined) {
        throw new Error(
          `${id}: ctx.input("${stage}"): "${stage}" is not an upstream of this stage (upstream: ${
            Object.keys(upstream).join(", ") || "none"
          })`,
        );
      }
      if (list.length !== 1) {
        throw new Error(
          `${id}: ctx.input("${stage}") expects one upstream node, found ${list.length}; use ctx.upstream["${stage}"]`,
        );
      }
      return list[0];
    },
  };
  return {
    ctx,
    summary: metrics.summary,
    finish: () => metrics.finish(options.outDir),
    close: metrics.close,
  };
}
