/**
 * The graph as text: an indented tree from the root nodes (a node reached a second time is
 * listed once more, marked, without its subtree), or a Mermaid flowchart.
 *
 * @module
 */

import type { PipelineGraph } from "./graph.ts";

/**
 * Indented text tree of the graph.
 *
 * @param graph The graph.
 * @returns Lines of text.
 * @example
 * ```
 * source
 * ├── scale
 * │   └── train[method=grpo,seed=1]
 * └── tally
 * ```
 */
export function dagText(graph: PipelineGraph): string {
  const lines: string[] = [];
  const shown = new Set<string>();
  const walk = (id: string, prefix: string, last: boolean, root: boolean) => {
    const node = graph.byId.get(id)!;
    const reads = [...node.upstream.values()].flat().length;
    const repeat = shown.has(id);
    const note = repeat ? "  (see above)" : reads > 1 ? `  (reads ${reads} nodes)` : "";
    lines.push(root ? `${id}${note}` : `${prefix}${last ? "└── " : "├── "}${id}${note}`);
    if (repeat) return;
    shown.add(id);
    const children = graph.downstream.get(id) ?? [];
    const childPrefix = root ? "" : prefix + (last ? "    " : "│   ");
    children.forEach((child, i) => walk(child.id, childPrefix, i === children.length - 1, false));
  };
  for (const node of graph.nodes) {
    if ([...node.upstream.values()].flat().length === 0) walk(node.id, "", true, true);
  }
  const stageCount = graph.stages.length;
  lines.push(
    "",
    `${graph.nodes.length} nodes in ${stageCount} stage${stageCount === 1 ? "" : "s"}`,
  );
  return lines.join("\n");
}

/**
 * Mermaid flowchart of the graph (paste into any Mermaid renderer or a Markdown file).
 *
 * @param graph The graph.
 * @returns Mermaid source.
 */
export function dagMermaid(graph: PipelineGraph): string {
  const ids = new Map(graph.nodes.map((node, i) => [node.id, `n${i}`]));
  const lines = ["flowchart TD"];
  for (const node of graph.nodes) {
    lines.push(`  ${ids.get(node.id)}["${node.id.replaceAll('"', "#quot;")}"]`);
  }
  for (const node of graph.nodes) {
    for (const ups of node.upstream.values()) {
      for (const up of ups) lines.push(`  ${ids.get(up.id)} --> ${ids.get(node.id)}`);
    }
  }
  return lines.join("\n");
}
