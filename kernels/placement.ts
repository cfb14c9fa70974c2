/**
 * Placement check: which execution provider ORT assigns each node of a graph to under the WebGPU
 * EP. A node that falls back to the CPU EP costs a GPU→CPU synchronisation in the middle of the
 * graph (kernels/README.md §2), so every generated training graph is checked in a test.
 *
 * ORT reports placement only in its verbose log ("Node placements", from
 * `VerifyEachNodeIsAssignedToAnEp`), which it writes to the process's stderr. The check therefore
 * creates the session in a `deno run` subprocess (`_webgpu_probe.ts`) with narrow permissions
 * (read the project, write `.sent/`, ffi, env, sys) and parses that subprocess's stderr.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { checkPlacement } from "./placement.ts";
 * const b = new GraphBuilder("exp");
 * b.output(b.exp(b.input("x", "float32", [4])), "y");
 * const report = await checkPlacement(b.build());
 * report.cpuNodes; // []
 * ```
 *
 * @module
 */

import type { Graph } from "./ir.ts";
import { serializeModel } from "./onnx_proto.ts";

/** One node as ORT placed it. */
export interface NodePlacement {
  /** Execution provider, e.g. `WebGpuExecutionProvider` or `CPUExecutionProvider`. */
  readonly provider: string;
  readonly op: string;
  /** ORT node name; ours are `<op>_<index in graph.nodes>`. */
  readonly node: string;
  /** Outputs of our node, when the name maps back to one (ORT-created nodes have none). */
  readonly outputs?: readonly string[];
}

/** Result of `checkPlacement`. */
export interface PlacementReport {
  readonly graph: string;
  /** Every placed node (ORT's view after its graph optimisations). */
  readonly placements: readonly NodePlacement[];
  /** Nodes on the CPU EP; empty when the whole graph runs on WebGPU. */
  readonly cpuNodes: readonly NodePlacement[];
}

/** Options of `checkPlacement`. */
export interface PlacementOptions {
  /** Kill the subprocess after this long; default 120 s. */
  timeoutMs?: number;
}

const PROJECT_ROOT = new URL("../", import.meta.url).pathname;
const PROBE = new URL("./_webgpu_probe.ts", import.meta.url).pathname;

/**
 * Permissions of a `deno run` subprocess that opens engine sessions: reads of the project, writes
 * to its `.sent/`, ORT over FFI, and the env and sys names the engine and its packages read.
 */
export const ENGINE_SUBPROCESS_FLAGS: readonly string[] = [
  `--allow-read=${PROJECT_ROOT}`,
  `--allow-write=${PROJECT_ROOT}.sent`,
  "--allow-ffi",
  "--allow-env=SENT_*,VK_ICD_FILENAMES,VK_DRIVER_FILES,XDG_RUNTIME_DIR,LOG_TOKENS,LOG_STREAM",
  "--allow-sys=cpus,hostname,osRelease,systemMemoryInfo",
];
const HEADER = /placed on \[(\w+)\]\. Number of nodes: (\d+)/;
const NODE_LINE = /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\S+) \((.*)\)\s*$/;

/** What ORT's verbose "Node placements" dump says. */
export interface PlacementLog {
  /** Set when ORT printed "All nodes placed on [provider]" (it then lists no nodes). */
  readonly allOn?: string;
  /** One entry per listed node, with the provider of the block it sits in. */
  readonly nodes: readonly NodePlacement[];
}

/**
 * Parse ORT's verbose "Node placements" dump.
 *
 * @param log ORT's stderr at log severity 0.
 * @returns The providers ORT reported.
 */
export function parsePlacementLog(log: string): PlacementLog {
  const nodes: NodePlacement[] = [];
  let allOn: string | undefined;
  let provider: string | undefined;
  for (const line of log.split("\n")) {
    if (!line.includes("VerifyEachNodeIsAssignedToAnEp")) {
      provider = undefined;
      continue;
    }
    const header = HEADER.exec(line);
    if (header) {
      provider = header[1];
      if (line.includes("All nodes placed on")) allOn = provider;
      continue;
    }
    const node = NODE_LINE.exec(line);
    if (node && provider) nodes.push({ provider, op: node[1], node: node[2] });
  }
  return { allOn, nodes };
}

/**
 * Create a WebGPU session for `graph` in a subprocess and report where ORT placed each node.
 *
 * @param graph The graph to check.
 * @param options Subprocess timeout.
 * @returns The placements and the nodes that fell back to the CPU EP.
 * @throws Error when the session cannot be created (the message carries ORT's error).
 */
export async function checkPlacement(
  graph: Graph,
  options: PlacementOptions = {},
): Promise<PlacementReport> {
  const command = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      ...ENGINE_SUBPROCESS_FLAGS,
      PROBE,
    ],
    cwd: PROJECT_ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
  });
  const child = command.spawn();
  const writer = child.stdin.getWriter();
  await writer.write(serializeModel(graph));
  await writer.close();
  const { stdout, stderr } = await child.output();
  const log = new TextDecoder().decode(stderr);
  const resultLine = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  let result: { ok: boolean; error?: string };
  try {
    result = JSON.parse(resultLine);
  } catch {
    throw new Error(
      `checkPlacement(${graph.name}): the probe printed no result; its stderr ends with:\n` +
        log.slice(-2000),
    );
  }
  if (!result.ok) throw new Error(`checkPlacement(${graph.name}): ${result.error}`);
  const parsed = parsePlacementLog(log);
  if (parsed.nodes.length === 0 && !parsed.allOn) {
    throw new Error(`checkPlacement(${graph.name}): ORT logged no node placements`);
  }
  const placements = parsed.allOn
    ? graph.nodes.map((n, i) =>
      withOutputs(graph, { provider: parsed.allOn!, op: n.op, node: `${n.op}_${i}` })
    )
    : parsed.nodes.map((p) => withOutputs(graph, p));
  const cpuNodes = placements.filter((p) => p.provider === "CPUExecutionProvider");
  return { graph: graph.name, placements, cpuNodes };
}

/**
 * Throw when any node of `graph` is placed on the CPU EP under WebGPU; the message lists them.
 *
 * @param graph The graph to check.
 * @param options Subprocess timeout.
 */
export async function assertAllOnWebGpu(
  graph: Graph,
  options: PlacementOptions = {},
): Promise<void> {
  const report = await checkPlacement(graph, options);
  if (report.cpuNodes.length === 0) return;
  const lines = report.cpuNodes.map((p) =>
    `  ${p.op} (${p.node})${p.outputs ? ` → ${p.outputs.join(", ")}` : ""}`
  );
  throw new Error(
    `graph ${graph.name}: ${report.cpuNodes.length} node(s) fall back to the CPU EP under ` +
      `webgpu:\n${lines.join("\n")}`,
  );
}

function withOutputs(graph: Graph, p: NodePlacement): NodePlacement {
  const m = /^(\w+)_(\d+)$/.exec(p.node);
  const node = m ? graph.nodes[Number(m[2])] : undefined;
  if (!node || node.op !== m![1]) return p;
  const outputs = node.outputs.map((o) => `${o.name}: ${o.dtype}[${o.shape.join(",")}]`);
  return { ...p, outputs };
}
