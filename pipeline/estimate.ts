/**
 * The cost table `--dry-run` prints: for every stage with planned nodes, how many nodes and the
 * sum of their estimated tokens and FLOPs (each stage's optional `estimate` hook), then a total.
 *
 * @example
 * ```ts ignore
 * import { estimateLines } from "./estimate.ts";
 * for (const line of estimateLines(planned, config.values)) console.log(line);
 * // estimated cost of the 23 planned nodes (responses at their token limit):
 * //   stage      nodes      tokens       FLOPs
 * //   score          1     2.41e+7    1.52e+17
 * //   …
 * ```
 *
 * @module
 */

import type { PipelineNode } from "./graph.ts";
import type { StageEstimate } from "./stage.ts";

/**
 * A count for a table cell: plain below 10⁴, else three significant digits and an exponent.
 *
 * @param x The count.
 * @returns Its text (`–` when not finite).
 * @example
 * ```ts
 * formatCount(812); // "812"
 * formatCount(1.5e17); // "1.50e17"
 * ```
 */
export function formatCount(x: number): string {
  if (!Number.isFinite(x)) return "–";
  return x < 1e4 ? String(Math.round(x)) : x.toExponential(2).replace("e+", "e");
}

/** One stage's row: nodes and summed cost; `none` without a hook, `unknown` when a node's is null. */
interface Row {
  stage: string;
  nodes: number;
  cost: { tokens: number; flops: number } | "none" | "unknown";
}

/** A node's estimate: `none` when its stage has no hook, `unknown` when the hook cannot tell. */
function nodeEstimate(
  node: PipelineNode,
  config: Readonly<Record<string, unknown>>,
): StageEstimate | "none" | "unknown" {
  if (node.stage.estimate === undefined) return "none";
  try {
    return node.stage.estimate(config, node.params) ?? "unknown";
  } catch {
    // An estimate is advice: a config the hook does not understand shows as unknown.
    return "unknown";
  }
}

/** Add a node's estimate to a row's sum (`unknown` wins, then `none`). */
function add(sum: Row["cost"], e: ReturnType<typeof nodeEstimate>): Row["cost"] {
  if (sum === "unknown" || e === "unknown") return "unknown";
  if (e === "none") return sum;
  if (sum === "none") return { tokens: e.tokens, flops: e.flops };
  return { tokens: sum.tokens + e.tokens, flops: sum.flops + e.flops };
}

/**
 * The lines of the cost table for the nodes a run would execute: one row per stage (`–`: the
 * stage does no model work it estimates; `?`: its hook cannot tell, e.g. the model size is
 * unknown), then the total of what is known.
 *
 * @param planned Nodes that would run, in plan order.
 * @param config The resolved config (`config.values`).
 * @returns Lines to print; none when nothing is planned.
 */
export function estimateLines(
  planned: readonly PipelineNode[],
  config: Readonly<Record<string, unknown>>,
): string[] {
  if (planned.length === 0) return [];
  const rows = new Map<string, Row>();
  for (const node of planned) {
    const name = node.stage.name;
    const row = rows.get(name) ?? { stage: name, nodes: 0, cost: "none" };
    rows.set(name, row);
    row.nodes++;
    row.cost = add(row.cost, nodeEstimate(node, config));
  }
  const all = [...rows.values()];
  let total: Row["cost"] = "none";
  for (const r of all) if (typeof r.cost === "object") total = add(total, r.cost);
  const width = Math.max(8, ...all.map((r) => r.stage.length));
  const line = (stage: string, nodes: string, tokens: string, flops: string) =>
    `  ${stage.padEnd(width)} ${nodes.padStart(6)} ${tokens.padStart(11)} ${flops.padStart(11)}`;
  const mark = { none: "–", unknown: "?" } as const;
  const cell = (r: Row) =>
    typeof r.cost === "object"
      ? line(r.stage, String(r.nodes), formatCount(r.cost.tokens), formatCount(r.cost.flops))
      : line(r.stage, String(r.nodes), mark[r.cost], mark[r.cost]);
  const unknown = all.filter((r) => r.cost === "unknown").map((r) => r.stage);
  return [
    `estimated cost of the ${planned.length} planned nodes (responses at their token limit):`,
    line("stage", "nodes", "tokens", "FLOPs"),
    ...all.map(cell),
    cell({ stage: "total", nodes: planned.length, cost: total }),
    ...(unknown.length > 0
      ? [
        `  ? : not known (${unknown.join(", ")}: the model size could not be read); ` +
        "the total leaves them out",
      ]
      : []),
  ];
}
