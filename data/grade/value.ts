/**
 * Numbers for the grader: exact rationals (bigint numerator / denominator) while every operation
 * stays exact, floating point once one does not (π, irrational roots, non-integer powers).
 *
 * @module
 */

/** An exact rational `n/d` (d > 0, gcd 1) or an approximate real. */
export type Value = { exact: true; n: bigint; d: bigint } | { exact: false; v: number };

/** Largest bit length an exact result may reach before it is given up as a float. */
const MAX_EXACT_BITS = 100_000;

function gcd(a: bigint, b: bigint): bigint {
  a = a < 0n ? -a : a;
  b = b < 0n ? -b : b;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/** An exact rational, reduced. Division by zero gives NaN. */
export function rational(n: bigint, d: bigint = 1n): Value {
  if (d === 0n) return real(NaN);
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d);
  return g > 1n ? { exact: true, n: n / g, d: d / g } : { exact: true, n, d };
}

/** An approximate real. */
export function real(v: number): Value {
  return { exact: false, v };
}

/** Parse a decimal literal such as `12`, `0.25`, `1.5e-3` exactly. */
export function decimal(text: string): Value {
  const m = /^(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!m) return real(Number(text));
  const digits = `${m[1]}${m[2] ?? ""}` || "0";
  const exponent = (m[3] ? Number(m[3]) : 0) - (m[2] ?? "").length;
  if (Math.abs(exponent) > 4000) return real(Number(text));
  let n = BigInt(digits);
  let d = 1n;
  if (exponent >= 0) n *= 10n ** BigInt(exponent);
  else d = 10n ** BigInt(-exponent);
  return rational(n, d);
}

function bits(x: bigint): number {
  return (x < 0n ? -x : x).toString(2).length;
}

/** Float value of a bigint too large for `Number`: via its decimal length and leading digits. */
function bigToLog10(x: bigint): number {
  const s = (x < 0n ? -x : x).toString();
  return Math.log10(Number(`0.${s.slice(0, 17)}`)) + s.length;
}

/** Nearest float of a value (±Infinity when it overflows). */
export function toFloat(x: Value): number {
  if (!x.exact) return x.v;
  const n = Number(x.n);
  const d = Number(x.d);
  if (Number.isFinite(n) && Number.isFinite(d) && Math.abs(n) < 1e300 && d < 1e300) return n / d;
  if (x.n === 0n) return 0;
  const sign = x.n < 0n ? -1 : 1;
  return sign * 10 ** (bigToLog10(x.n) - bigToLog10(x.d));
}

type Binary = (a: Value, b: Value) => Value;

/** Exact when both sides are exact; otherwise on floats. */
function lift(
  exact: (a: Value & { exact: true }, b: Value & { exact: true }) => Value,
  approx: (a: number, b: number) => number,
): Binary {
  return (a, b) => a.exact && b.exact ? exact(a, b) : real(approx(toFloat(a), toFloat(b)));
}

/** Arithmetic on values. */
export const OPS: Readonly<Record<"add" | "sub" | "mul" | "div", Binary>> = {
  add: lift((a, b) => rational(a.n * b.d + b.n * a.d, a.d * b.d), (a, b) => a + b),
  sub: lift((a, b) => rational(a.n * b.d - b.n * a.d, a.d * b.d), (a, b) => a - b),
  mul: lift((a, b) => rational(a.n * b.n, a.d * b.d), (a, b) => a * b),
  div: lift((a, b) => rational(a.n * b.d, a.d * b.n), (a, b) => a / b),
};

/** Integer k-th root of a non-negative bigint, or null when it is not a perfect power. */
function exactRoot(x: bigint, k: number): bigint | null {
  if (x < 0n) return null;
  if (x < 2n) return x;
  const K = BigInt(k);
  // Integer Newton iteration from an upper bound; it decreases to floor(x^(1/k)).
  let r = 1n << BigInt(Math.ceil(bits(x) / k));
  for (;;) {
    const next = ((K - 1n) * r + x / r ** (K - 1n)) / K;
    if (next >= r) break;
    r = next;
  }
  return r ** K === x ? r : null;
}

/** `a ^ b`: exact for rational bases with integer exponents (and perfect-power roots). */
export function power(a: Value, b: Value): Value {
  if (a.exact && b.exact && b.d === 1n) {
    const e = b.n < 0n ? -b.n : b.n;
    if (bits(a.n) * Number(e) <= MAX_EXACT_BITS && bits(a.d) * Number(e) <= MAX_EXACT_BITS) {
      const n = a.n ** e;
      const d = a.d ** e;
      return b.n < 0n ? rational(d, n) : rational(n, d);
    }
  }
  // A fractional exponent p/q with a perfect q-th power: (a^(1/q))^p exactly. (q = 1 is the
  // integer case above, too large to be exact, so it goes to floats.)
  if (a.exact && b.exact && b.d > 1n && b.d <= 16n && a.n >= 0n) {
    const rn = exactRoot(a.n, Number(b.d));
    const rd = exactRoot(a.d, Number(b.d));
    if (rn !== null && rd !== null) return power(rational(rn, rd), rational(b.n));
  }
  return real(Math.pow(toFloat(a), toFloat(b)));
}

/** k-th root (k = 2 for `\sqrt`). Negative radicands: real odd roots only. */
export function root(a: Value, k: number): Value {
  if (a.exact && a.n >= 0n) {
    const rn = exactRoot(a.n, k);
    const rd = exactRoot(a.d, k);
    if (rn !== null && rd !== null) return rational(rn, rd);
  }
  const x = toFloat(a);
  return real(x < 0 && k % 2 === 1 ? -Math.pow(-x, 1 / k) : Math.pow(x, 1 / k));
}

/** n! for integers 0 ≤ n ≤ 2000, exactly. */
export function factorial(a: Value): Value {
  if (!a.exact || a.d !== 1n || a.n < 0n || a.n > 2000n) return real(NaN);
  let r = 1n;
  for (let k = 2n; k <= a.n; k++) r *= k;
  return rational(r);
}

/** Options for {@link valuesEqual}. */
export interface Tolerance {
  /** Relative tolerance for approximate values (default 1e-6). */
  relTol?: number;
  /** Absolute tolerance for approximate values near zero (default 1e-9). */
  absTol?: number;
}

/**
 * Equality of two values: exact when both are exact, otherwise within tolerance.
 *
 * @returns True when equal; false for NaN on either side.
 */
export function valuesEqual(a: Value, b: Value, tol: Tolerance = {}): boolean {
  if (a.exact && b.exact) return a.n === b.n && a.d === b.d;
  const x = toFloat(a);
  const y = toFloat(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return false;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  const relTol = tol.relTol ?? 1e-6;
  const absTol = tol.absTol ?? 1e-9;
  return Math.abs(x - y) <= Math.max(relTol * Math.max(Math.abs(x), Math.abs(y)), absTol);
}
