/**
 * The metrics writer behind `ctx.metrics`: rows go to `metrics.jsonl` (one JSON object per
 * line), the summary into the manifest.
 *
 * Rows are appended to the node's scratch directory while the stage runs and copied into the
 * artifact when it finishes, so a stage that resumes from a checkpoint can keep the rows its
 * interrupted attempt logged before that checkpoint: it saves `ctx.metrics.count` in the
 * checkpoint and calls `ctx.metrics.resume(count)` when it loads it. The artifact then holds
 * the same rows as an uninterrupted run. An attempt that does not call `resume` starts with no
 * rows.
 *
 * @module
 */

import type { MetricsWriter } from "./stage.ts";

/** Name of the rows file, in the scratch directory and in the artifact. */
export const METRICS_FILE = "metrics.jsonl";
const PREVIOUS_FILE = "metrics.previous.jsonl";

/** A metrics writer and the runner's hooks. */
export interface MetricsSink {
  /** The writer handed to the stage. */
  writer: MetricsWriter;
  /** Summary values gathered so far. */
  summary: Record<string, unknown>;
  /** Close the rows file and copy it into the artifact directory (if any rows were logged). */
  finish(outDir: string): void;
  /** Close the rows file without copying (the stage failed). */
  close(): void;
}

/**
 * Start the metrics of one attempt at a node.
 *
 * @param scratchDir The node's scratch directory.
 * @param nodeId Node id, for error messages.
 * @returns The writer and its hooks.
 */
export function createMetricsSink(scratchDir: string, nodeId: string): MetricsSink {
  const encoder = new TextEncoder();
  const current = `${scratchDir}/${METRICS_FILE}`;
  const previous = `${scratchDir}/${PREVIOUS_FILE}`;
  // The last attempt's rows become "previous"; this attempt starts empty.
  if (exists(current)) Deno.renameSync(current, previous);
  const file = Deno.openSync(current, { write: true, create: true, truncate: true });
  let count = 0;
  let closed = false;
  const summary: Record<string, unknown> = {};

  const writer: MetricsWriter = {
    get count() {
      return count;
    },
    log(row) {
      file.writeSync(encoder.encode(JSON.stringify(row) + "\n"));
      count++;
    },
    resume(rows) {
      if (count > 0) {
        throw new Error(
          `${nodeId}: ctx.metrics.resume(${rows}) must come before the first ctx.metrics.log`,
        );
      }
      const kept = exists(previous)
        ? Deno.readTextFileSync(previous).split("\n").filter((line) => line !== "").slice(0, rows)
        : [];
      if (kept.length < rows) {
        throw new Error(
          `${nodeId}: ctx.metrics.resume(${rows}): the interrupted attempt logged only ${kept.length} rows`,
        );
      }
      if (kept.length > 0) file.writeSync(encoder.encode(kept.join("\n") + "\n"));
      count = kept.length;
    },
    summary(values) {
      Object.assign(summary, structuredClone(values));
    },
  };

  const close = () => {
    if (!closed) file.close();
    closed = true;
  };
  return {
    writer,
    summary,
    close,
    finish(outDir) {
      close();
      if (count > 0) Deno.copyFileSync(current, `${outDir}/${METRICS_FILE}`);
    },
  };
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
