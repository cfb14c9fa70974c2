/**
 * Subprocess entry of `placement.ts`: reads an ONNX model from stdin, creates a WebGPU session
 * with verbose logging (ORT writes its node-placement dump to this process's stderr), and prints
 * one JSON line on stdout: `{"ok":true}` or `{"ok":false,"error":"…"}`.
 *
 * Run as `deno run --allow-read=<project> --allow-write=<project>/.sent --allow-ffi --allow-env
 * --allow-sys kernels/_webgpu_probe.ts < model.onnx`.
 *
 * @module
 */

import * as ort from "onnxruntime-node";
import { ensureWebGpuDriver } from "./swiftshader.ts";

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

try {
  ensureWebGpuDriver();
  const model = await readStdin();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ["webgpu"],
    logSeverityLevel: 0,
    intraOpNumThreads: 1,
  });
  await session.release();
  console.log(JSON.stringify({ ok: true }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }));
}
