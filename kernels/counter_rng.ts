/**
 * Counter-based random numbers: the t-th number of a stream is a hash of (stream key, t), so it
 * does not depend on how many numbers were drawn before, by whom, or in which order.
 *
 * Sampling uses one stream per (seed, problem, sample): row r of a batch draws number t for its
 * t-th generated token, whatever the batch size, the row's place in the batch, or which shard runs
 * it. Weight initialisation uses one stream per (seed, tensor name).
 *
 * The mixer is MurmurHash3's 32-bit finaliser (Appleby) applied in three rounds over the key
 * words and the counter: fast in JavaScript's 32-bit integer arithmetic and well spread, which is
 * all sampling needs (not for cryptography).
 *
 * @example
 * ```ts
 * import { counterUniform, streamKey } from "./counter_rng.ts";
 * const key = streamKey(7, "problem-12", 3);
 * counterUniform(key, 0); // the same number every time, in [0, 1)
 * ```
 *
 * @module
 */

/** A stream key: two 32-bit words. */
export type StreamKey = readonly [number, number];

/** MurmurHash3 fmix32: a bijection on 32-bit words with full avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hashText(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return fmix32(h ^ text.length);
}

/**
 * The key of a stream named by its parts (seed, problem id, sample index, …).
 *
 * @param parts Numbers or strings; `(7, "a", 3)` and `(7, "a3")` are different streams.
 * @returns The key.
 */
export function streamKey(...parts: readonly (number | string)[]): StreamKey {
  const text = parts.map((p) => `${typeof p}:${p}`).join("\u0000");
  return [hashText(text, 0x9e3779b9), hashText(text, 0x7f4a7c15)];
}

/**
 * 32 random bits: number `counter` of the stream `key`.
 *
 * @param key Stream key.
 * @param counter Index in the stream, an integer in [0, 2^32).
 * @param lane Which of several words for the same counter (0 or 1 below).
 * @returns An integer in [0, 2^32).
 */
export function counterBits(key: StreamKey, counter: number, lane = 0): number {
  let h = fmix32((counter >>> 0) ^ key[0]);
  h = fmix32((h + Math.imul(lane + 1, 0x9e3779b9)) ^ key[1]);
  return fmix32(h + key[0]);
}

/**
 * A uniform number in [0, 1) with 53 random bits: number `counter` of the stream `key`.
 *
 * @param key Stream key.
 * @param counter Index in the stream, an integer in [0, 2^32).
 * @returns A number in [0, 1).
 */
export function counterUniform(key: StreamKey, counter: number): number {
  const high = counterBits(key, counter, 0) >>> 5; // 27 bits
  const low = counterBits(key, counter, 1) >>> 6; // 26 bits
  return (high * 67108864 + low) / 9007199254740992;
}
