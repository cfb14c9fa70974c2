/**
 * Numeric assertions for engine tests: element-wise closeness with a failure message that shows
 * the worst element, the max differences and the first few values (as llm.c's test_gpt2.c does).
 */

/** Tolerances of `assertAllClose`. */
export interface CloseOptions {
  /** Absolute tolerance; default 1e-5. */
  atol?: number;
  /** Relative tolerance; default 1e-4. */
  rtol?: number;
}

/**
 * Assert |actual − expected| ≤ atol + rtol·|expected| everywhere (NaN never matches).
 *
 * @param actual Values under test.
 * @param expected Reference values.
 * @param what Name used in the failure message.
 * @param options Tolerances.
 */
export function assertAllClose(
  actual: ArrayLike<number | bigint>,
  expected: ArrayLike<number | bigint>,
  what: string,
  options: CloseOptions = {},
): void {
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-4;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length}, expected ${expected.length}`);
  }
  let worst = -1;
  let worstExcess = 0;
  let maxAbs = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = Number(actual[i]);
    const e = Number(expected[i]);
    const diff = Math.abs(a - e);
    maxAbs = Math.max(maxAbs, Number.isNaN(diff) ? Infinity : diff);
    const excess = Number.isNaN(diff) ? Infinity : diff - (atol + rtol * Math.abs(e));
    if (excess > worstExcess || (worst < 0 && excess > 0)) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst < 0) return;
  const head = (xs: ArrayLike<number | bigint>) =>
    Array.from({ length: Math.min(5, xs.length) }, (_, i) => Number(xs[i]).toPrecision(6)).join(
      ", ",
    );
  throw new Error(
    `${what}: element ${worst} is ${Number(actual[worst])}, expected ${Number(expected[worst])} ` +
      `(max |diff| ${maxAbs.toExponential(3)}, atol ${atol}, rtol ${rtol})\n` +
      `  actual:   ${head(actual)} …\n  expected: ${head(expected)} …`,
  );
}

/** Max |a − b| over two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
