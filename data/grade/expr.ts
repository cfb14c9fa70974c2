/**
 * A small parser and evaluator for the maths in final answers: numbers, `+ - * / ^ !`, implicit
 * multiplication, `\frac`, `\sqrt[n]{}`, `\binom`, `\pi`, `e`, `\infty`, mixed numbers
 * (`2\frac{1}{2}` = 5/2), floor/ceil/abs, common functions, and single-symbol variables.
 *
 * Input is an answer already through `normalizeAnswer`. Anything outside this grammar (base
 * subscripts like `2215_6`, `\pm`, matrices, words with operators the grammar lacks) fails to
 * parse, and the grader falls back to comparing normalised strings.
 *
 * @module
 */

import { decimal, factorial, OPS, power, real, root, toFloat, type Value } from "./value.ts";

/** Parsed expression. `mixed` marks `a\frac{b}{c}` literals that were read as a + b/c. */
export type Expr =
  | { t: "num"; value: Value; literal: boolean }
  | { t: "var"; name: string }
  | { t: "neg"; a: Expr }
  | { t: "bin"; op: "add" | "sub" | "mul" | "div" | "pow"; a: Expr; b: Expr; intFrac?: boolean }
  | { t: "call"; fn: string; args: Expr[] };

type Token = { k: "num" | "id" | "cmd" | "op"; text: string };

/** Named constants: evaluated, never treated as free variables. */
const CONSTANTS: Record<string, Value> = {
  pi: real(Math.PI),
  e: real(Math.E),
  infty: real(Infinity),
};

/** One-argument functions, by name (with or without a backslash). */
const FUNCTIONS: Record<string, (x: number) => number> = {
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  sec: (x) => 1 / Math.cos(x),
  csc: (x) => 1 / Math.sin(x),
  cot: (x) => 1 / Math.tan(x),
  arcsin: Math.asin,
  arccos: Math.acos,
  arctan: Math.atan,
  sinh: Math.sinh,
  cosh: Math.cosh,
  tanh: Math.tanh,
  ln: Math.log,
  log: Math.log,
  exp: Math.exp,
};

const GREEK = new Set([
  "alpha",
  "beta",
  "gamma",
  "delta",
  "epsilon",
  "varepsilon",
  "zeta",
  "eta",
  "theta",
  "vartheta",
  "iota",
  "kappa",
  "lambda",
  "mu",
  "nu",
  "xi",
  "rho",
  "sigma",
  "tau",
  "upsilon",
  "phi",
  "varphi",
  "chi",
  "psi",
  "omega",
  "Gamma",
  "Delta",
  "Theta",
  "Lambda",
  "Xi",
  "Sigma",
  "Phi",
  "Psi",
  "Omega",
  "ell",
]);

/** Commands that mean multiplication or division. */
const OPERATOR_COMMANDS: Record<string, string> = { cdot: "*", times: "*", ast: "*", div: "/" };

class ParseError extends Error {}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let k = 0;
  while (k < text.length) {
    const rest = text.slice(k);
    let m: RegExpExecArray | null;
    if (/^\s/.test(rest)) {
      k++;
    } else if ((m = /^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+(?![a-zA-Z]))?/.exec(rest))) {
      if (rest[m[0].length] === "_") throw new ParseError("base subscript");
      tokens.push({ k: "num", text: m[0] });
      k += m[0].length;
    } else if ((m = /^[a-zA-Z]+(?:_(?:\{[^{}]*\}|[a-zA-Z0-9]))?'*/.exec(rest))) {
      const word = m[0];
      tokens.push({ k: word in FUNCTIONS ? "cmd" : "id", text: word });
      k += word.length;
    } else if ((m = /^\\([a-zA-Z]+)/.exec(rest))) {
      const name = m[1];
      if (name in OPERATOR_COMMANDS) tokens.push({ k: "op", text: OPERATOR_COMMANDS[name] });
      else if (GREEK.has(name)) tokens.push({ k: "id", text: `\\${name}` });
      else tokens.push({ k: "cmd", text: name });
      k += m[0].length;
    } else if ("+-*/^!()[]{}|'_".includes(rest[0])) {
      tokens.push({ k: "op", text: rest[0] });
      k++;
    } else {
      throw new ParseError(`unexpected ${JSON.stringify(rest[0])}`);
    }
  }
  return tokens;
}

/** Recursive-descent parser over tokens; see the module doc for the grammar. */
class Parser {
  #k = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Expr {
    const e = this.expr();
    if (this.#k !== this.tokens.length) {
      throw new ParseError(`trailing ${this.tokens[this.#k].text}`);
    }
    return e;
  }

  #peek(): Token | undefined {
    return this.tokens[this.#k];
  }
  #isOp(text: string): boolean {
    const t = this.#peek();
    return t !== undefined && t.k === "op" && t.text === text;
  }
  #expect(text: string): void {
    if (!this.#isOp(text)) throw new ParseError(`expected ${text}`);
    this.#k++;
  }

  expr(): Expr {
    let e: Expr;
    if (this.#isOp("-")) {
      this.#k++;
      e = { t: "neg", a: this.term() };
    } else {
      if (this.#isOp("+")) this.#k++;
      e = this.term();
    }
    while (this.#isOp("+") || this.#isOp("-")) {
      const op = this.tokens[this.#k++].text === "+" ? "add" : "sub";
      e = { t: "bin", op, a: e, b: this.term() };
    }
    return e;
  }

  term(): Expr {
    let e = this.factor();
    for (;;) {
      if (this.#isOp("*") || this.#isOp("/")) {
        const op = this.tokens[this.#k++].text === "*" ? "mul" : "div";
        e = { t: "bin", op, a: e, b: this.factor() };
      } else if (this.#startsPrimary()) {
        const next = this.factor();
        // A mixed number: an integer literal directly followed by \frac{int}{int}.
        const mixed = e.t === "num" && e.literal && next.t === "bin" && next.intFrac === true;
        e = { t: "bin", op: mixed ? "add" : "mul", a: e, b: next };
      } else {
        return e;
      }
    }
  }

  #startsPrimary(): boolean {
    const t = this.#peek();
    if (t === undefined) return false;
    if (t.k === "cmd") return t.text !== "rfloor" && t.text !== "rceil";
    if (t.k !== "op") return true;
    return t.text === "(" || t.text === "{" || t.text === "[";
  }

  factor(): Expr {
    if (this.#isOp("-")) {
      this.#k++;
      return { t: "neg", a: this.factor() };
    }
    if (this.#isOp("+")) this.#k++;
    const base = this.postfix();
    if (this.#isOp("^")) {
      this.#k++;
      return { t: "bin", op: "pow", a: base, b: this.factor() };
    }
    return base;
  }

  postfix(): Expr {
    let e = this.primary();
    while (this.#isOp("!")) {
      this.#k++;
      e = { t: "call", fn: "factorial", args: [e] };
    }
    return e;
  }

  #group(): Expr {
    if (this.#isOp("{")) {
      this.#k++;
      const e = this.expr();
      this.#expect("}");
      return e;
    }
    return this.postfix(); // `\frac12`-style single tokens were braced by normalisation
  }

  primary(): Expr {
    const t = this.tokens[this.#k++];
    if (t === undefined) throw new ParseError("unexpected end");
    if (t.k === "num") {
      return {
        t: "num",
        value: decimal(t.text),
        literal: !t.text.includes(".") && !/e/i.test(t.text),
      };
    }
    if (t.k === "id") {
      return t.text === "e" ? { t: "call", fn: "e", args: [] } : { t: "var", name: t.text };
    }
    if (t.k === "op") {
      const close = { "(": ")", "{": "}", "[": "]", "|": "|" }[t.text];
      if (close === undefined) throw new ParseError(`unexpected ${t.text}`);
      const e = this.expr();
      this.#expect(close);
      return t.text === "|" ? { t: "call", fn: "abs", args: [e] } : e;
    }
    return this.#command(t.text);
  }

  #command(name: string): Expr {
    if (name in CONSTANTS) return { t: "call", fn: name, args: [] };
    if (name === "frac" || name === "cfrac") {
      const a = this.#group();
      const b = this.#group();
      const intFrac = a.t === "num" && a.literal && b.t === "num" && b.literal;
      return { t: "bin", op: "div", a, b, intFrac };
    }
    if (name === "binom") return { t: "call", fn: "binom", args: [this.#group(), this.#group()] };
    if (name === "sqrt") {
      let index: Expr = { t: "num", value: decimal("2"), literal: true };
      if (this.#isOp("[")) {
        this.#k++;
        index = this.expr();
        this.#expect("]");
      }
      return { t: "call", fn: "root", args: [this.#group(), index] };
    }
    if (name === "lfloor" || name === "lceil") {
      const e = this.expr();
      const t = this.tokens[this.#k++];
      if (t?.text !== (name === "lfloor" ? "rfloor" : "rceil")) {
        throw new ParseError(`unclosed ${name}`);
      }
      return { t: "call", fn: name.slice(1), args: [e] };
    }
    if (name === "log" && this.#isOp("_")) {
      this.#k++;
      const base = this.#group();
      const x = this.factor();
      return {
        t: "bin",
        op: "div",
        a: { t: "call", fn: "ln", args: [x] },
        b: { t: "call", fn: "ln", args: [base] },
      };
    }
    if (name in FUNCTIONS) {
      if (this.#isOp("^")) throw new ParseError(`power of ${name}`);
      return { t: "call", fn: name, args: [this.factor()] };
    }
    throw new ParseError(`unsupported command \\${name}`);
  }
}

/**
 * Parse a normalised answer into an expression.
 *
 * @param text Normalised answer text.
 * @returns The expression, or null when it is outside the grammar.
 */
export function parseExpr(text: string): Expr | null {
  if (text.trim() === "") return null;
  try {
    return new Parser(tokenize(text)).parse();
  } catch (e) {
    if (e instanceof ParseError) return null;
    throw e;
  }
}

/**
 * Names of the free variables of an expression.
 *
 * @param e Parsed expression.
 * @returns Sorted variable names.
 */
export function freeVariables(e: Expr): string[] {
  const names = new Set<string>();
  const walk = (x: Expr): void => {
    if (x.t === "var") names.add(x.name);
    else if (x.t === "neg") walk(x.a);
    else if (x.t === "bin") [x.a, x.b].forEach(walk);
    else if (x.t === "call") x.args.forEach(walk);
  };
  walk(e);
  return [...names].sort();
}

const CALLS: Record<string, (args: Value[]) => Value> = {
  pi: () => CONSTANTS.pi,
  e: () => CONSTANTS.e,
  infty: () => CONSTANTS.infty,
  factorial: ([a]) => factorial(a),
  root: ([a, k]) =>
    k.exact && k.d === 1n && k.n > 0n && k.n <= 64n
      ? root(a, Number(k.n))
      : power(a, OPS.div(real(1), k)),
  binom: ([n, k]) => OPS.div(factorial(n), OPS.mul(factorial(k), factorial(OPS.sub(n, k)))),
  floor: ([a]) => a.exact ? { exact: true, n: floorDiv(a.n, a.d), d: 1n } : real(Math.floor(a.v)),
  ceil: ([a]) => a.exact ? { exact: true, n: -floorDiv(-a.n, a.d), d: 1n } : real(Math.ceil(a.v)),
  abs: ([a]) => a.exact ? { exact: true, n: a.n < 0n ? -a.n : a.n, d: a.d } : real(Math.abs(a.v)),
};

function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d;
  return n % d !== 0n && (n < 0n) !== (d < 0n) ? q - 1n : q;
}

/**
 * Evaluate an expression.
 *
 * @param e Parsed expression.
 * @param env Values of its free variables.
 * @returns Its value (NaN when undefined, e.g. division by zero).
 * @throws Error naming a variable missing from `env`.
 */
export function evaluate(e: Expr, env: ReadonlyMap<string, Value> = new Map()): Value {
  switch (e.t) {
    case "num":
      return e.value;
    case "var": {
      const v = env.get(e.name);
      if (v === undefined) throw new Error(`variable "${e.name}" has no value`);
      return v;
    }
    case "neg":
      return OPS.sub({ exact: true, n: 0n, d: 1n }, evaluate(e.a, env));
    case "bin": {
      const a = evaluate(e.a, env);
      const b = evaluate(e.b, env);
      return e.op === "pow" ? power(a, b) : OPS[e.op](a, b);
    }
    case "call": {
      const args = e.args.map((x) => evaluate(x, env));
      const call = CALLS[e.fn];
      if (call) return call(args);
      return real(FUNCTIONS[e.fn](toFloat(args[0])));
    }
  }
}
