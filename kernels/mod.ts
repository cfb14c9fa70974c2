/**
 * The tensor engine: ONNX graphs built in TypeScript, differentiated by our own reverse-mode
 * autodiff, and run by ONNX Runtime on the CPU, WebGPU or CUDA execution provider.
 *
 * - Build: `GraphBuilder` records ONNX ops with shape inference (`ShapeError` at build time);
 *   `serializeModel` writes ModelProto bytes.
 * - Differentiate: `grad(graph, loss, wrt)` / `gradInto(builder, loss, wrt)`, rules in
 *   `GRAD_RULES`.
 * - Fused graphs: `tokenEntropy`, `chosenLogProb`, `klK3`, and the AdamW update (`adamwInto`).
 * - Run: `compile(graph, {device})` gives a `Program`; `HostTensor` / `DeviceTensor` handles make
 *   reading GPU memory or feeding it to a CPU session impossible; `download` / `upload` move
 *   data. `buildTrainStep` + `Trainer` run forward, backward and AdamW as one graph per step,
 *   or accumulate gradients over micro-batches before one update, with the state resident on
 *   WebGPU; `saveState` / `Trainer.restore` resume a run exactly (`trainer_state.ts`).
 * - Check: `assertAllOnWebGpu(graph)` fails when a node falls back to the CPU under WebGPU.
 * - Model: the Qwen2 transformer graphs (`transformer.ts`), the run-time `Policy`, batched
 *   generation with a KV cache (`sampling.ts`), rollout batches aligned with the score graph and
 *   a policy that follows its trainer (`rollout.ts`), counter-based random streams, and export as
 *   a standalone ONNX decoder.
 * - Weights: safetensors files and Hugging Face checkpoints.
 *
 * @example
 * ```ts
 * import { buildTrainStep, GraphBuilder, hostTensor, Trainer } from "./mod.ts";
 *
 * // Fit y = 2x with one weight.
 * const b = new GraphBuilder("line");
 * const x = b.input("x", "float32", ["n"]); //  [n]
 * const y = b.input("y", "float32", ["n"]); //  [n]
 * const w = b.input("w", "float32", [1]); //    [1]
 * const err = b.sub(b.mul(x, w), y);
 * b.output(b.reduceMean(b.mul(err, err), [0], false), "loss");
 *
 * const step = buildTrainStep(b.build(), { params: ["w"], weightDecay: 0 });
 * const trainer = await Trainer.create(step, { w: hostTensor("float32", [1], [0]) });
 * const data = {
 *   x: hostTensor("float32", [3], [1, 2, 3]),
 *   y: hostTensor("float32", [3], [2, 4, 6]),
 * };
 * for (let i = 0; i < 100; i++) await trainer.step(data, { lr: 0.1 });
 * (await trainer.state()).get("w")!.data; // ≈ [2]
 * await trainer.release();
 * ```
 *
 * @module
 */

export * from "./ir.ts";
export * from "./builder.ts";
export { broadcastShapes, ShapeError } from "./ops.ts";
export * from "./onnx_proto.ts";
export * from "./autodiff.ts";
export { GRAD_RULES } from "./grad_rules.ts";
export type { GradContext, GradFn, GradKind, GradRule } from "./grad_rules.ts";
export * from "./session.ts";
export * from "./swiftshader.ts";
export * from "./placement.ts";
export * from "./fused.ts";
export * from "./adamw.ts";
export * from "./train_step.ts";
export * from "./trainer_state.ts";
export * from "./safetensors.ts";
export * from "./checkpoint.ts";
export * from "./transformer.ts";
export * from "./policy.ts";
export * from "./sampling.ts";
export * from "./rollout.ts";
export * from "./export.ts";
export * from "./counter_rng.ts";
