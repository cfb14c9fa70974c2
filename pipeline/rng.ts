/**
 * A small, fast, seedable pseudo-random generator: xoshiro128** (Blackman & Vigna, "Scrambled
 * linear pseudorandom number generators", 2018). 128 bits of state, period 2^128 − 1, and all
 * arithmetic in 32-bit integers, which JavaScript does exactly with `Math.imul` and `>>> 0`.
 *
 * Seeding: a number or string is expanded to the four state words with splitmix32, so nearby
 * seeds (1, 2, 3) give unrelated streams. `fork(...labels)` derives an independent child stream
 * from the *seed* (not from the current state), so the stream of, say, (problem 12, sample 3)
 * does not depend on how many numbers were drawn before it or on batch size.
 *
 * This is for simulation and sampling, not for cryptography.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = Rng.fromSeed("train[method=sent,seed=1]");
 * rng.float(); // in [0, 1)
 * rng.int(6); // 0..5
 * const sampleRng = rng.fork("problem", 12, "sample", 3);
 * ```
 *
 * @module
 */

/** A seed: an integer or any string (for example a node id). */
export type Seed = number | string;

/** Seeded xoshiro128** generator. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  #seedText: string;
  #spareNormal: number | null = null;

  /**
   * Build a generator from its raw 128-bit state. Prefer {@link Rng.fromSeed}.
   *
   * @param state Four 32-bit words, not all zero.
   * @param seedText Text that `fork()` derives child seeds from.
   */
  constructor(state: readonly [number, number, number, number], seedText = state.join(",")) {
    if (state.every((word) => (word >>> 0) === 0)) {
      throw new RangeError("Rng: the state must not be all zero (xoshiro would output only 0)");
    }
    [this.#s0, this.#s1, this.#s2, this.#s3] = state.map((word) => word >>> 0);
    this.#seedText = seedText;
  }

  /**
   * Generator for a seed; the same seed always gives the same stream.
   *
   * @param seed Integer or string.
   * @returns A fresh generator.
   * @example
   * ```ts
   * import { Rng } from "./rng.ts";
   * Rng.fromSeed(7).nextU32() === Rng.fromSeed(7).nextU32(); // true
   * ```
   */
  static fromSeed(seed: Seed): Rng {
    const text = typeof seed === "number" ? `n:${seed}` : `s:${seed}`;
    const state = hash128(text);
    if (state.every((word) => word === 0)) state[0] = 1;
    return new Rng(state, text);
  }

  /**
   * An independent child stream named by labels, derived from this generator's seed.
   *
   * @param labels Names and indices, e.g. `("problem", 12, "sample", 3)`.
   * @returns A fresh generator; the same labels always give the same stream.
   */
  fork(...labels: readonly (string | number)[]): Rng {
    return Rng.fromSeed(`${this.#seedText}/${labels.map(String).join("/")}`);
  }

  /**
   * Next raw 32-bit output.
   *
   * @returns An integer in [0, 2^32).
   */
  nextU32(): number {
    const s1 = this.#s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = (s1 << 9) >>> 0;
    this.#s2 ^= this.#s0;
    this.#s3 ^= s1;
    this.#s1 = (s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /**
   * Uniform float with 53 random bits.
   *
   * @returns A number in [0, 1).
   */
  float(): number {
    const high = this.nextU32() >>> 5; // 27 bits
    const low = this.nextU32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992; // (high·2^26 + low) / 2^53
  }

  /**
   * Uniform integer in [0, n) without modulo bias (rejection sampling).
   *
   * @param n Exclusive upper bound, an integer in [1, 2^32].
   * @returns An integer in [0, n).
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new RangeError(`Rng.int: n is ${n}; expected an integer in [1, 2^32]`);
    }
    // Accept only draws below the largest multiple of n that fits in 2^32.
    const limit = 4294967296 - (4294967296 % n);
    while (true) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /**
   * Standard normal draw (Box–Muller; the second value of each pair is kept for the next call).
   *
   * @returns A sample of N(0, 1).
   */
  normal(): number {
    if (this.#spareNormal !== null) {
      const spare = this.#spareNormal;
      this.#spareNormal = null;
      return spare;
    }
    const u1 = 1 - this.float(); // (0, 1], so log is finite
    const u2 = this.float();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.#spareNormal = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Shuffle an array in place (Fisher–Yates).
   *
   * @param items Array to permute.
   * @returns The same array, permuted.
   */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** splitmix32's output mix (Vigna's 32-bit variant of splitmix64's finaliser). */
function splitmix32Mix(z: number): number {
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * String → 128 bits for seeding: four FNV-1a-style lanes over UTF-16 code units, each with its
 * own start value and odd multiplier, then a cross-lane mix and splitmix32's finaliser per word.
 * 128 bits keep distinct labels (e.g. thousands of forked per-sample streams) from colliding,
 * which a single 32-bit hash would do by the birthday bound.
 */
function hash128(text: string): [number, number, number, number] {
  let a = 0x811c9dc5, b = 0x9e3779b9, c = 0x85ebca6b, d = 0xc2b2ae35;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995);
    c = Math.imul(c ^ code, 0x27d4eb2f);
    d = Math.imul(d ^ code, 0x165667b1);
  }
  a ^= text.length;
  b ^= rotl(a >>> 0, 7);
  c ^= rotl(b >>> 0, 13);
  d ^= rotl(c >>> 0, 19);
  a ^= rotl(d >>> 0, 23);
  return [splitmix32Mix(a), splitmix32Mix(b), splitmix32Mix(c), splitmix32Mix(d)];
}
