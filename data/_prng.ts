/**
 * A small seeded pseudo-random generator for the data generators (no `Math.random`).
 *
 * Algorithm: the state is seeded with SplitMix32-style mixing of a string seed's FNV-1a hash, then
 * advanced with Mulberry32 (Tommy Ettinger's 32-bit generator). Period 2^32, plenty for drawing a
 * few hundred thousand problems; not for cryptography.
 */

/** A seeded stream of uniform numbers. */
export interface Prng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number;
  /** One element drawn uniformly from `items`. */
  pick<T>(items: readonly T[]): T;
  /** A key drawn with probability proportional to its weight. */
  weighted<K extends string | number>(weights: ReadonlyArray<readonly [K, number]>): K;
}

/** FNV-1a 32-bit hash of a string (UTF-16 code units), as an unsigned integer. */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Create a generator whose whole stream is fixed by `seed`. */
export function makePrng(seed: string | number): Prng {
  let state = fnv1a32(`prng:${seed}`);
  const next = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)],
    weighted: (weights) => {
      const total = weights.reduce((s, [, w]) => s + w, 0);
      let u = next() * total;
      for (const [key, w] of weights) {
        if (u < w) return key;
        u -= w;
      }
      return weights[weights.length - 1][0];
    },
  };
}
