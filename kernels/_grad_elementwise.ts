/**
 * Gradient rules of the elementwise ops: arithmetic with broadcasting, activations, selection.
 * x, a, b are forward inputs, y the forward output, g the output gradient; every input
 * gradient is summed back over the axes its input was broadcast along (`unbroadcast`).
 *
 * @module
 */

import type { GraphBuilder } from "./builder.ts";
import type { Value } from "./ir.ts";
import type { GradContext, GradRule } from "./_grad_util.ts";
import { attrString, each, inp, out, rule, scalarOf, unbroadcast } from "./_grad_util.ts";

/** Sum `g` (shaped like the node's output) back to the shape of input i. */
function toInput(c: GradContext, g: Value, i: number): Value {
  return unbroadcast(c.b, g, out(c).shape, inp(c, i).shape);
}

/** A scalar constant in the dtype of `like`. */
function k(c: GradContext, x: number, like: Value): Value {
  return scalarOf(c.b, x, like.dtype);
}

/** Gelu'(x) for approximate = "none": Φ(x) + x·φ(x), Φ(x) = ½(1 + erf(x/√2)), φ(x) = e^(−x²/2)/√(2π). */
function geluExactSlope(c: GradContext, x: Value): Value {
  const b = c.b;
  const cdf = b.mul(k(c, 0.5, x), b.add(k(c, 1, x), b.erf(b.mul(x, k(c, Math.SQRT1_2, x)))));
  const pdf = b.mul(
    k(c, 1 / Math.sqrt(2 * Math.PI), x),
    b.exp(b.mul(b.mul(x, x), k(c, -0.5, x))),
  );
  return b.add(cdf, b.mul(x, pdf));
}

/**
 * Gelu'(x) for approximate = "tanh": y = ½x(1 + t), t = tanh(u), u = √(2/π)(x + 0.044715x³);
 * y' = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²).
 */
function geluTanhSlope(c: GradContext, x: Value): Value {
  const b = c.b;
  const s = Math.sqrt(2 / Math.PI);
  const x2 = b.mul(x, x);
  const u = b.mul(b.mul(x, b.add(k(c, 1, x), b.mul(x2, k(c, 0.044715, x)))), k(c, s, x));
  const t = b.tanh(u);
  const du = b.mul(b.add(k(c, 1, x), b.mul(x2, k(c, 3 * 0.044715, x))), k(c, s, x));
  const half = k(c, 0.5, x);
  const left = b.mul(half, b.add(k(c, 1, x), t));
  const right = b.mul(b.mul(half, x), b.mul(b.sub(k(c, 1, x), b.mul(t, t)), du));
  return b.add(left, right);
}

/** sign(x)·g without Sign (→CPU on WebGPU): Where(x < 0, −g, Where(x > 0, g, 0)). */
function signTimes(b: GraphBuilder, x: Value, g: Value): Value {
  const zero = scalarOf(b, 0, x.dtype);
  return b.where(b.less(x, zero), b.neg(g), b.where(b.greater(x, zero), g, zero));
}

/**
 * Pow(x, p): dx = g·p·x^(p−1); dp = g·y·log(x) (defined for x > 0). A constant scalar p folds
 * into constants (p = 2 needs no Pow at all).
 */
function powGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const [x, p] = [inp(c, 0), inp(c, 1)];
  const pc = p.constant && p.constant.data.length === 1 ? Number(p.constant.data[0]) : undefined;
  const slope = (): Value => {
    if (pc === 1) return k(c, 1, x);
    if (pc === 2) return b.mul(x, k(c, 2, x));
    if (pc !== undefined) return b.mul(b.pow(x, k(c, pc - 1, x)), k(c, pc, x));
    const pf = b.cast(p, x.dtype);
    return b.mul(b.pow(x, b.sub(pf, k(c, 1, x))), pf);
  };
  return each(
    c,
    (g) => toInput(c, b.mul(g, slope()), 0),
    (g) => toInput(c, b.mul(b.mul(g, out(c)), b.log(x)), 1),
  );
}

/** y = a·b: da = g·b, db = g·a; for a square (a = b) the one product g·a serves both inputs. */
/**
 * y = x·σ(x) (SiLU, with s = σ(x) the other input): dx = g·s·(1 + x − y), four elementwise ops,
 * where the separate Mul and Sigmoid rules take six (g·s, g·x, 1 − s, s·(1 − s), the product,
 * and the sum). s gets no gradient from here: its whole contribution is in dx, and the Sigmoid
 * node still passes on any gradient s receives from other consumers. Measured in the width-512
 * block's backward ([4096, 1408]): ≈ 8 ms less per layer.
 */
function siluGrads(c: GradContext, xi: number): (Value | null)[] {
  const b = c.b;
  const [x, s, y, g] = [inp(c, xi), inp(c, 1 - xi), out(c), c.dy[0]!];
  const dx = b.mul(b.mul(g, s), b.add(b.sub(x, y), k(c, 1, x)));
  return c.node.inputs.map((_, i) => (i === xi && c.needs[i] ? dx : null));
}

/** Index of the SiLU input x when the Mul is x·Sigmoid(x) (either order), else -1. */
function siluInput(c: GradContext): number {
  const [a, b] = [inp(c, 0), inp(c, 1)];
  if (a.name === b.name || !c.producer || !c.needs[0] && !c.needs[1]) return -1;
  for (const [xi, si] of [[0, 1], [1, 0]]) {
    const p = c.producer(inp(c, si));
    const x = inp(c, xi);
    if (p?.op === "Sigmoid" && !p.domain && p.inputs[0]?.name === x.name && c.needs[xi]) {
      return sameShape(x.shape, out(c).shape) ? xi : -1;
    }
  }
  return -1;
}

function sameShape(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function mulGrads(c: GradContext): (Value | null)[] {
  const [a, b] = [inp(c, 0), inp(c, 1)];
  const xi = siluInput(c);
  if (xi >= 0) return siluGrads(c, xi);
  if (a.name === b.name) {
    let ga: Value | undefined;
    return each(c, (g) => (ga ??= c.b.mul(g, a)), (g) => (ga ??= c.b.mul(g, a)));
  }
  return each(
    c,
    (g) => toInput(c, c.b.mul(g, b), 0),
    (g) => toInput(c, c.b.mul(g, a), 1),
  );
}

/** Div: da = g/b; db = −(g/b)·y (= −g·a/b²), sharing g/b. */
function divGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  let gOverB: Value | undefined;
  const shared = (g: Value) => (gOverB ??= b.div(g, inp(c, 1)));
  return each(
    c,
    (g) => toInput(c, shared(g), 0),
    (g) => b.neg(toInput(c, b.mul(shared(g), out(c)), 1)),
  );
}

/**
 * Max/Min over n inputs: the gradient goes to the inputs equal to y, split evenly among ties:
 * dxᵢ = g·[xᵢ = y] / Σⱼ[xⱼ = y].
 */
function extremumGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const y = out(c);
  const masks = c.node.inputs.map((x) => b.cast(b.equal(x!, y), y.dtype));
  const ties = masks.slice(1).reduce((s, m) => b.add(s, m), masks[0]);
  let share: Value | undefined;
  return c.node.inputs.map((_, i) => {
    if (!c.needs[i]) return null;
    share ??= b.div(c.dy[0]!, ties);
    return toInput(c, b.mul(share, masks[i]), i);
  });
}

/**
 * Clip(x, lo, hi): dx = g where lo ≤ x ≤ hi, else 0; dlo = Σ g where x < lo; dhi = Σ g where
 * x > hi (the bounds are scalars).
 */
function clipGrads(c: GradContext): (Value | null)[] {
  const b = c.b;
  const [x, lo, hi] = [inp(c, 0), c.node.inputs[1] ?? null, c.node.inputs[2] ?? null];
  const zero = k(c, 0, x);
  const inside = (): Value | null => {
    const above = lo ? b.greaterOrEqual(x, lo) : null;
    const below = hi ? b.lessOrEqual(x, hi) : null;
    return above && below ? b.and(above, below) : above ?? below;
  };
  return each(
    c,
    (g) => {
      const m = inside();
      return m ? b.where(m, g, zero) : g;
    },
    (g) => unbroadcast(b, b.where(b.less(x, lo!), g, zero), x.shape, lo!.shape),
    (g) => unbroadcast(b, b.where(b.greater(x, hi!), g, zero), x.shape, hi!.shape),
  );
}

/** Gradient rules of the elementwise ops, keyed by ONNX op type. */
export const ELEMENTWISE_RULES: Readonly<Record<string, GradRule>> = {
  // y = a + b: da = g, db = g (each summed over its broadcast axes).
  Add: rule("linear", (c) => each(c, (g) => toInput(c, g, 0), (g) => toInput(c, g, 1))),
  // y = a − b: da = g, db = −g.
  Sub: rule("linear", (c) => each(c, (g) => toInput(c, g, 0), (g) => c.b.neg(toInput(c, g, 1)))),
  Mul: rule("uses-input", mulGrads),
  Div: rule("uses-output", divGrads),
  Pow: rule("uses-input", powGrads),
  Neg: rule("linear", (c) => each(c, (g) => c.b.neg(g))),
  Identity: rule("linear", (c) => each(c, (g) => g)),
  // Cast: the gradient is cast back to the input's float type.
  Cast: rule("linear", (c) => each(c, (g) => c.b.cast(g, inp(c, 0).dtype))),
  // y = √x: dx = g·½/y.
  Sqrt: rule("uses-output", (c) => each(c, (g) => c.b.div(c.b.mul(g, k(c, 0.5, g)), out(c)))),
  // y = 1/x: dx = −g·y².
  Reciprocal: rule(
    "uses-output",
    (c) => each(c, (g) => c.b.neg(c.b.mul(g, c.b.mul(out(c), out(c))))),
  ),
  // y = eˣ: dx = g·y.
  Exp: rule("uses-output", (c) => each(c, (g) => c.b.mul(g, out(c)))),
  // y = log x: dx = g/x.
  Log: rule("uses-input", (c) => each(c, (g) => c.b.div(g, inp(c, 0)))),
  // y = tanh x: dx = g·(1 − y²).
  Tanh: rule("uses-output", (c) =>
    each(c, (g) => {
      const y = out(c);
      return c.b.mul(g, c.b.sub(k(c, 1, y), c.b.mul(y, y)));
    })),
  // y = σ(x): dx = g·y·(1 − y).
  Sigmoid: rule("uses-output", (c) =>
    each(c, (g) => {
      const y = out(c);
      return c.b.mul(g, c.b.mul(y, c.b.sub(k(c, 1, y), y)));
    })),
  // y = erf x: dx = g·(2/√π)·e^(−x²).
  Erf: rule("uses-input", (c) =>
    each(c, (g) => {
      const x = inp(c, 0);
      const bump = c.b.exp(c.b.neg(c.b.mul(x, x)));
      return c.b.mul(g, c.b.mul(bump, k(c, 2 / Math.sqrt(Math.PI), x)));
    })),
  Gelu: rule("uses-input", (c) =>
    each(c, (g) => {
      const tanh = attrString(c.node, "approximate", "none") === "tanh";
      return c.b.mul(g, tanh ? geluTanhSlope(c, inp(c, 0)) : geluExactSlope(c, inp(c, 0)));
    })),
  // y = max(x, 0): dx = g where y > 0.
  Relu: rule(
    "uses-output",
    (c) => each(c, (g) => c.b.where(c.b.greater(out(c), k(c, 0, g)), g, k(c, 0, g))),
  ),
  // y = |x|: dx = g·sign(x) (0 at x = 0).
  Abs: rule("uses-input", (c) => each(c, (g) => signTimes(c.b, inp(c, 0), g))),
  // y = sin x: dx = g·cos x.   y = cos x: dx = −g·sin x.
  Sin: rule("uses-input", (c) => each(c, (g) => c.b.mul(g, c.b.cos(inp(c, 0))))),
  Cos: rule("uses-input", (c) => each(c, (g) => c.b.neg(c.b.mul(g, c.b.sin(inp(c, 0)))))),
  Max: rule("uses-output", extremumGrads),
  Min: rule("uses-output", extremumGrads),
  Clip: rule("uses-input", clipGrads),
  // y = Where(cond, a, b): da = Where(cond, g, 0), db = Where(cond, 0, g), each unbroadcast
  // (ORT's own rule forgets the broadcast reduction; notes §8.5).
  Where: rule("linear", (c) => {
    const [cond, zero] = [inp(c, 0), k(c, 0, out(c))];
    return each(
      c,
      null,
      (g) => toInput(c, c.b.where(cond, g, zero), 1),
      (g) => toInput(c, c.b.where(cond, zero, g), 2),
    );
  }),
};
