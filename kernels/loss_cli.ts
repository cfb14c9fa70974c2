/**
 * `deno task loss FILE.json`: evaluate one registered policy loss on a host micro-batch through
 * the real ONNX graph (`buildDirectLossGraph`) on the CPU, and print
 * `{"loss": …, "gradLogp": [[…]], "metrics": {…}}` as one JSON line. For checking a loss by
 * hand against another implementation: the same numbers a train step would compute from these
 * log-probs and entropies, and the gradient with respect to the log-probs.
 *
 * The file is one JSON object (B rows, T positions):
 *
 * | key | shape | meaning |
 * | --- | --- | --- |
 * | `method` | string | a registered loss (`grpo`, `sent`, …) |
 * | `options` | object | optional; the loss's options by name (`variant`, `clipLow`, `klCovRatio`, `ppoKlCoef`, `refCoef`, …); omitted ones take the method's defaults |
 * | `mask` | [B, T] | 1 for response tokens, 0 for prompt and padding |
 * | `advantages` | [B] | one advantage per row |
 * | `logp`, `entropy` | [B, T] | current policy: log-prob of each token, entropy at it |
 * | `oldLogp`, `refLogp` | [B, T] | rollout and reference policy log-probs |
 * | `oldEntropy` | [B, T] | optional (default `entropy`): rollout-policy entropy (`entropy_adv`) |
 * | `uniforms` | [B, T] | optional: Clip-Cov's uniforms in [0, 1); default drawn from `seed` |
 * | `seed` | integer | optional (default 0): seed of the default uniforms |
 * | `lossScale` | number | optional (default 1): the `loss_scale` input |
 *
 * The batch is its own statistic scope (`statScope` is taken as `micro`). A file that is not
 * valid JSON, an unknown key, method or option, or a misshapen array: one line on stderr, exit 2.
 *
 * @example
 * ```ts
 * import { evaluateLoss, parseLossRequest } from "./loss_cli.ts";
 * const request = parseLossRequest({
 *   method: "grpo", mask: [[1, 1]], advantages: [1], logp: [[-1, -2]], entropy: [[1, 1]],
 *   oldLogp: [[-1, -2]], refLogp: [[-1, -2]],
 * });
 * (await evaluateLoss(request)).loss; // -1
 * ```
 *
 * @module
 */

import { streamKey } from "./counter_rng.ts";
import {
  buildDirectLossGraph,
  clipCovUniforms,
  LOSS_METRICS,
  LossConfigError,
  type LossMetric,
  type LossOptions,
  resolveLossOptions,
} from "./losses.ts";
import { compile, hostTensor } from "./session.ts";

/** A bad request file: the message names the key and what was expected. */
export class LossRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LossRequestError";
  }
}

/** A checked request: the method, its options and the micro-batch as flat arrays. */
export interface LossRequest {
  readonly method: string;
  readonly options: LossOptions;
  readonly batch: number;
  readonly width: number;
  /** Row-major [batch, width] arrays by graph input name, and `advantages` [batch]. */
  readonly arrays: Readonly<Record<string, Float32Array>>;
  readonly lossScale: number;
}

/** What {@link evaluateLoss} returns (printed as JSON by the task). */
export interface LossEvaluation {
  readonly loss: number;
  /** dloss/dlogp, [B][T]. */
  readonly gradLogp: number[][];
  readonly metrics: Record<LossMetric, number>;
}

const MATRICES = {
  mask: "response_mask",
  logp: "logp",
  entropy: "entropy",
  oldLogp: "old_logp",
  refLogp: "ref_logp",
  oldEntropy: "old_entropy",
  uniforms: "clip_cov_uniforms",
} as const;
const OPTIONAL = new Set(["options", "oldEntropy", "uniforms", "seed", "lossScale"]);
const KEYS = ["method", "options", "advantages", "seed", "lossScale", ...Object.keys(MATRICES)];

function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function matrix(key: string, v: unknown, rows: number, width: number): Float32Array {
  const shape = `a [${rows}, ${width}] array of numbers (the shape of mask)`;
  if (!Array.isArray(v) || v.length !== rows) {
    throw new LossRequestError(`${key} must be ${shape}`);
  }
  const out = new Float32Array(rows * width);
  v.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== width || !row.every(finite)) {
      throw new LossRequestError(
        `${key}[${r}] must be ${width} finite numbers; ${key} must be ${shape}`,
      );
    }
    out.set(row, r * width);
  });
  return out;
}

/**
 * Check a parsed request file.
 *
 * @param json The parsed JSON.
 * @returns The request.
 * @throws LossRequestError or LossConfigError naming the first problem.
 */
export function parseLossRequest(json: unknown): LossRequest {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new LossRequestError(
      "the request must be a JSON object with method, mask, advantages, …",
    );
  }
  const j = json as Record<string, unknown>;
  for (const key of Object.keys(j)) {
    if (!KEYS.includes(key)) {
      throw new LossRequestError(`unknown key ${JSON.stringify(key)}; expected ${KEYS.join(", ")}`);
    }
  }
  if (typeof j.method !== "string") throw new LossRequestError("method must be a string");
  if (j.options !== undefined && (typeof j.options !== "object" || Array.isArray(j.options))) {
    throw new LossRequestError(`options must be an object, got ${JSON.stringify(j.options)}`);
  }
  const options = { ...(j.options as Record<string, unknown> ?? {}) };
  resolveLossOptions(j.method, options); // names a bad method or option
  for (const key of KEYS) {
    if (!OPTIONAL.has(key) && !(key in j)) throw new LossRequestError(`missing key ${key}`);
  }
  if (!Array.isArray(j.mask) || j.mask.length === 0 || !Array.isArray(j.mask[0])) {
    throw new LossRequestError("mask must be a non-empty [B, T] array");
  }
  const [batch, width] = [j.mask.length, (j.mask[0] as unknown[]).length];
  if (width === 0) throw new LossRequestError("mask rows must not be empty");
  const arrays: Record<string, Float32Array> = {};
  for (const [key, input] of Object.entries(MATRICES)) {
    if (key in j) arrays[input] = matrix(key, j[key], batch, width);
  }
  if (!arrays.response_mask.every((m) => m === 0 || m === 1)) {
    throw new LossRequestError("mask must hold only 0 and 1");
  }
  arrays.old_entropy ??= arrays.entropy;
  const seed = j.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LossRequestError(`seed must be an integer, got ${seed}`);
  arrays.clip_cov_uniforms ??= clipCovUniforms(
    streamKey(seed as number, "clip_cov"),
    batch * width,
  );
  if (!arrays.clip_cov_uniforms.every((u) => u >= 0 && u < 1)) {
    throw new LossRequestError("uniforms must lie in [0, 1)");
  }
  if (
    !Array.isArray(j.advantages) || j.advantages.length !== batch || !j.advantages.every(finite)
  ) {
    throw new LossRequestError(`advantages must be ${batch} finite numbers (one per row of mask)`);
  }
  arrays.advantages = Float32Array.from(j.advantages as number[]);
  const lossScale = j.lossScale ?? 1;
  if (!finite(lossScale)) throw new LossRequestError(`lossScale must be a finite number`);
  return {
    method: j.method,
    options: { ...options, statScope: "micro" } as LossOptions,
    batch,
    width,
    arrays,
    lossScale,
  };
}

/**
 * Evaluate a request through the real graph on the CPU.
 *
 * @param request From {@link parseLossRequest}.
 * @returns The loss, its gradient with respect to `logp`, and every metric.
 */
export async function evaluateLoss(request: LossRequest): Promise<LossEvaluation> {
  const program = await compile(buildDirectLossGraph(request.method, request.options), {
    threads: 1,
  });
  try {
    const { batch, width, arrays } = request;
    const feeds = Object.fromEntries(
      program.inputNames.map((name) => {
        if (name === "loss_scale") return [name, hostTensor("float32", [], [request.lossScale])];
        const dims = name === "advantages" ? [batch] : [batch, width];
        return [name, hostTensor("float32", dims, arrays[name])];
      }),
    );
    const out = await program.run(feeds);
    const grad = out.host("grad.logp").toNumbers();
    return {
      loss: out.scalar("loss"),
      gradLogp: Array.from({ length: batch }, (_, r) => grad.slice(r * width, (r + 1) * width)),
      metrics: Object.fromEntries(LOSS_METRICS.map((m) => [m, out.scalar(m)])) as Record<
        LossMetric,
        number
      >,
    };
  } finally {
    await program.release();
  }
}

const USAGE = 'usage: deno task loss FILE.json   (prints {"loss", "gradLogp", "metrics"})';

/**
 * The task: read, check, evaluate, print.
 *
 * @param args Command-line arguments (one file name).
 * @returns Exit code: 0, or 2 for bad input (one line on stderr).
 */
export async function lossMain(args: readonly string[]): Promise<number> {
  if (args.length !== 1 || args[0].startsWith("-")) {
    console.error(
      args[0] === "--help" || args[0] === "-h" ? USAGE : `expected one FILE.json\n${USAGE}`,
    );
    return args[0] === "--help" || args[0] === "-h" ? 0 : 2;
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(args[0]));
  } catch (e) {
    const why = e instanceof SyntaxError ? "is not valid JSON" : "cannot be read";
    console.error(`loss: ${args[0]} ${why}: ${(e as Error).message.split("\n")[0]}`);
    return 2;
  }
  let request: LossRequest;
  try {
    request = parseLossRequest(json);
  } catch (e) {
    if (e instanceof LossRequestError || e instanceof LossConfigError) {
      console.error(`loss: ${args[0]}: ${e.message}`);
      return 2;
    }
    throw e;
  }
  console.log(JSON.stringify(await evaluateLoss(request)));
  return 0;
}

if (import.meta.main) {
  Deno.exit(await lossMain(Deno.args));
}
