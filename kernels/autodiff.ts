/**
 * Reverse-mode automatic differentiation of our ONNX graphs.
 *
 * `grad(graph, loss, wrt)` returns a new graph that computes everything the old one did and also
 * outputs dL/dw for each `wrt` value (named `grad.<name>` by default). `gradInto(builder, …)`
 * emits the same backward nodes into a builder and returns the gradient values, so a training
 * step can go on to the optimizer update in the same graph.
 *
 * How the driver works (the rules themselves are in `grad_rules.ts`):
 * 1. Forward sweep: mark the float values that depend on a `wrt` value, skipping nodes marked
 *    `stopGradient` and ops registered as zero-gradient or non-differentiable.
 * 2. Backward sweep: keep the marked nodes that lie on a path to the loss. A node off that path
 *    emits nothing, and a missing rule only fails when its node is on the path (naming the op).
 * 3. Seed the loss with 1 (a scalar or size-1 loss) or the given seed gradient, then visit the
 *    kept nodes in reverse topological order: sum the gradients that reached each output
 *    (chained Add; variadic Sum runs on the CPU under WebGPU), call the op's rule, and check it
 *    returned one gradient (or null) per input with the input's dtype and shape.
 * 4. Integer and bool values never get gradients. A `wrt` value the loss does not depend on
 *    gets zeros of its shape (an Expand of 0), so a train step can treat every parameter alike.
 *
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { grad } from "./autodiff.ts";
 * const b = new GraphBuilder("mse");
 * const x = b.input("x", "float32", ["batch", 3]);
 * const w = b.input("w", "float32", [3, 1]);
 * const y = b.input("y", "float32", ["batch", 1]);
 * const err = b.sub(b.matmul(x, w), y);
 * b.output(b.reduceMean(b.mul(err, err), [0, 1], false), "loss");
 * const g = grad(b.build(), "loss", ["w"]); // outputs: loss, grad.w [3,1]
 * ```
 *
 * @module
 */

import { GraphBuilder } from "./builder.ts";
import type { DType, Graph, Node, Shape, Value } from "./ir.ts";
import { FLOAT_DTYPES, formatShape, isStatic, staticSize } from "./ir.ts";
import { GRAD_RULES } from "./grad_rules.ts";
import type { GradRule } from "./grad_rules.ts";
import { scalarOf, zerosLike } from "./_grad_util.ts";

/** Options of `gradInto`. */
export interface GradIntoOptions {
  /** dL/dloss, shaped like the loss; required when the loss is not a scalar (default: 1). */
  seed?: Value;
  /** The rule table (default `GRAD_RULES`); pass an extended copy to add ops. */
  rules?: Readonly<Record<string, GradRule>>;
}

/** Options of `grad`. */
export interface GradOptions {
  /**
   * dL/dloss: a value of the graph, or the name of a new graph input shaped like the loss.
   * Required when the loss is not a scalar (default: 1).
   */
  seed?: Value | string;
  /** Output names, one per `wrt` value (default `grad.<name>`). */
  names?: readonly string[];
  /** The rule table (default `GRAD_RULES`). */
  rules?: Readonly<Record<string, GradRule>>;
}

/**
 * Differentiate `loss` with respect to `wrt` and return a graph that also outputs the gradients.
 *
 * @param graph The forward graph (unchanged; the result is a new graph).
 * @param loss The value to differentiate, or its name.
 * @param wrt The values (or names) to differentiate with respect to: inputs, initializers or
 *   intermediate values, all of a float dtype.
 * @param options Seed gradient, output names, rule table.
 * @returns The forward graph plus one output per `wrt` value.
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { grad } from "./autodiff.ts";
 * const b = new GraphBuilder("square");
 * const x = b.input("x", "float64", [4]);
 * b.output(b.reduceSum(b.mul(x, x), [0], false), "loss");
 * grad(b.build(), "loss", ["x"]).outputs.map((v) => v.name); // ["loss", "grad.x"]
 * ```
 */
export function grad(
  graph: Graph,
  loss: Value | string,
  wrt: readonly (Value | string)[],
  options: GradOptions = {},
): Graph {
  const b = GraphBuilder.from(graph);
  const lossValue = resolve(graph, loss);
  const wrtValues = wrt.map((w) => resolve(graph, w));
  const seed = typeof options.seed === "string"
    ? b.input(options.seed, lossValue.dtype, lossValue.shape)
    : options.seed;
  const grads = gradInto(b, lossValue, wrtValues, { seed, rules: options.rules });
  grads.forEach((g, i) => b.output(g, options.names?.[i] ?? `grad.${wrtValues[i].name}`));
  return b.build();
}

/**
 * Emit the backward pass of `loss` into `b` and return one gradient value per `wrt` value.
 *
 * @param b The builder holding the forward nodes (e.g. `GraphBuilder.from(graph)`).
 * @param loss The value to differentiate.
 * @param wrt The values to differentiate with respect to.
 * @param seed dL/dloss, or options holding it and the rule table.
 * @returns dL/dw for each `wrt` value, shaped like it (zeros when the loss does not depend on it).
 * @example
 * ```ts
 * import { GraphBuilder } from "./builder.ts";
 * import { gradInto } from "./autodiff.ts";
 * const b = new GraphBuilder("step");
 * const w = b.input("w", "float32", [3]);
 * const loss = b.reduceSumSquare(w, [0], false);
 * const [dw] = gradInto(b, loss, [w]);
 * b.output(b.sub(w, b.mul(dw, b.scalar(0.1))), "w_next"); // one SGD step in the same graph
 * ```
 */
export function gradInto(
  b: GraphBuilder,
  loss: Value,
  wrt: readonly Value[],
  seed?: Value | GradIntoOptions,
): Value[] {
  const options: GradIntoOptions = isValue(seed) ? { seed } : seed ?? {};
  const rules = options.rules ?? GRAD_RULES;
  for (const v of [loss, ...wrt]) {
    if (!FLOAT_DTYPES.has(v.dtype)) {
      throw new Error(
        `grad(): ${v === loss ? "loss" : "wrt value"} ${v.name} has dtype ${v.dtype}; ` +
          "only float values have gradients",
      );
    }
  }
  const nodes = [...b.nodes];
  const blocked = (n: Node) => {
    const kind = rules[ruleKey(n)]?.kind;
    return n.meta?.stopGradient === true || kind === "zero" || kind === "non-differentiable";
  };
  const reach = dependents(nodes, wrt, blocked);
  const path = nodesOnPath(nodes, loss, reach, blocked);
  for (const n of path) {
    if (!rules[ruleKey(n)]?.grad) {
      const known = Object.keys(rules).filter((k) => rules[k].grad).sort().join(", ");
      throw new Error(
        `grad(): no gradient rule for op ${ruleKey(n)} (node producing ${
          n.outputs.map((o) => o.name).join(", ")
        }), which lies between [${wrt.map((w) => w.name).join(", ")}] and the loss ${loss.name}; ` +
          `ops with rules: ${known}`,
      );
    }
  }

  const producers = new Map<string, Node>();
  for (const n of nodes) for (const o of n.outputs) producers.set(o.name, n);
  const producer = (v: Value) => producers.get(v.name);
  const acc = new Accumulator(b);
  if (reach.has(loss.name)) acc.add(loss.name, seedFor(b, loss, options.seed));
  for (const n of path) {
    const dy = n.outputs.map((o) => acc.total(o.name));
    if (dy.every((g) => g === null)) continue;
    const needs = n.inputs.map((v) => v !== null && reach.has(v.name));
    const gs = rules[ruleKey(n)].grad!({ b, node: n, dy, needs, producer });
    if (!Array.isArray(gs) || gs.length !== n.inputs.length) {
      throw new Error(
        `grad(): the rule for ${n.op} returned ${gs?.length} gradients for ${n.inputs.length} ` +
          "inputs; expected one per input (null where none)",
      );
    }
    gs.forEach((g, i) => {
      if (g === null) return;
      const x = n.inputs[i]!;
      if (!needs[i]) {
        throw new Error(
          `grad(): the rule for ${n.op} returned a gradient for input ${i} (${
            x?.name ?? "omitted"
          }), which needs none; expected null`,
        );
      }
      acc.add(x.name, checked(n, i, g));
    });
  }
  return wrt.map((w) => acc.total(w.name) ?? retag(zerosLike(b, w), w.shape));
}

// ----- the two sweeps -----------------------------------------------------------------------

/** Names of the float values that depend on a `wrt` value through unblocked nodes. */
function dependents(
  nodes: readonly Node[],
  wrt: readonly Value[],
  blocked: (n: Node) => boolean,
): Set<string> {
  const reach = new Set(wrt.map((w) => w.name));
  for (const n of nodes) {
    if (blocked(n) || !n.inputs.some((v) => v !== null && reach.has(v.name))) continue;
    for (const o of n.outputs) if (FLOAT_DTYPES.has(o.dtype)) reach.add(o.name);
  }
  return reach;
}

/** The nodes on a path from a `wrt` value to the loss, in reverse topological order. */
function nodesOnPath(
  nodes: readonly Node[],
  loss: Value,
  reach: ReadonlySet<string>,
  blocked: (n: Node) => boolean,
): Node[] {
  const needed = new Set([loss.name]);
  const path: Node[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (blocked(n) || !n.outputs.some((o) => needed.has(o.name))) continue;
    const ins = n.inputs.filter((v): v is Value => v !== null && reach.has(v.name));
    if (ins.length === 0) continue;
    path.push(n);
    for (const v of ins) needed.add(v.name);
  }
  return path;
}

// ----- helpers ------------------------------------------------------------------------------

/** Gradients reaching each value; `total` sums them once with chained Adds and keeps the sum. */
class Accumulator {
  readonly #b: GraphBuilder;
  readonly #grads = new Map<string, Value[]>();

  constructor(b: GraphBuilder) {
    this.#b = b;
  }

  add(name: string, g: Value): void {
    const list = this.#grads.get(name);
    if (list) list.push(g);
    else this.#grads.set(name, [g]);
  }

  total(name: string): Value | null {
    const list = this.#grads.get(name);
    if (!list) return null;
    if (list.length > 1) {
      const sum = list.slice(1).reduce((s, g) => retag(this.#b.add(s, g), list[0].shape), list[0]);
      this.#grads.set(name, [sum]);
    }
    return this.#grads.get(name)![0];
  }
}

/** The rule-table key of a node: its op type (other domains are prefixed: `com.microsoft.X`). */
function ruleKey(n: Node): string {
  return n.domain ? `${n.domain}.${n.op}` : n.op;
}

function isValue(v: unknown): v is Value {
  return typeof v === "object" && v !== null && "name" in v && "dtype" in v && "shape" in v;
}

/** The seed gradient: the given one (checked), or ones for a loss with one element. */
function seedFor(b: GraphBuilder, loss: Value, seed: Value | undefined): Value {
  if (seed) {
    if (seed.dtype !== loss.dtype || !shapesAgree(seed.shape, loss.shape)) {
      throw new Error(
        `grad(): seed ${seed.name} is ${seed.dtype}${formatShape(seed.shape)}; expected the ` +
          `loss's ${loss.dtype}${formatShape(loss.shape)}`,
      );
    }
    return seed;
  }
  if (staticSize(loss.shape) !== 1) {
    throw new Error(
      `grad(): loss ${loss.name} has shape ${formatShape(loss.shape)}; a loss that is not a ` +
        "scalar needs a seed gradient (options.seed)",
    );
  }
  const one = scalarOf(b, 1, loss.dtype);
  return loss.shape.length === 0 ? one : b.expand(one, b.ints(loss.shape as number[]));
}

/** Shapes that may be equal: same rank, and no two static dims differ. */
function shapesAgree(a: Shape, b: Shape): boolean {
  return a.length === b.length &&
    a.every((d, i) => !(isStatic(d) && isStatic(b[i]) && d !== b[i]));
}

/** The same value, declared with the forward value's shape (inference may have lost names). */
function retag(g: Value, shape: Shape): Value {
  if (g.constant || g.shape.every((d, i) => d === shape[i])) return g;
  return { name: g.name, dtype: g.dtype, shape };
}

/** Check a rule's gradient for input i against the input's dtype and shape. */
function checked(n: Node, i: number, g: Value): Value {
  const x = n.inputs[i]!;
  const dtype: DType = x.dtype;
  if (g.dtype !== dtype || !shapesAgree(g.shape, x.shape)) {
    throw new Error(
      `grad(): the rule for ${n.op} gave input ${i} (${x.name}: ${dtype}${
        formatShape(x.shape)
      }) a gradient of ${g.dtype}${formatShape(g.shape)}; expected the input's dtype and shape`,
    );
  }
  return retag(g, x.shape);
}

/** Find a value of the graph by name (inputs, initializers, node outputs). */
function resolve(graph: Graph, v: Value | string): Value {
  if (typeof v !== "string") return v;
  const found = graph.inputs.find((x) => x.name === v) ??
    graph.initializers.find((x) => x.name === v) ??
    graph.nodes.flatMap((n) => n.outputs).find((x) => x.name === v);
  if (!found) {
    throw new Error(
      `grad(): no value named ${v} in graph ${graph.name}; expected a graph input, initializer ` +
        "or node output",
    );
  }
  return found;
}
