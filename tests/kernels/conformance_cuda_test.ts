import { existsSync } from "node:fs";
import { deviceFactory, runConformance } from "./conformance_cases.ts";

const provider = new URL(
  "../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so",
  import.meta.url,
);
const installed = existsSync(provider);

runConformance({
  device: "cuda",
  createProgram: deviceFactory("cuda"),
  // TF32 is off by default in ORT's CUDA EP; reductions differ in order from the CPU.
  atol: 1e-4,
  skip: installed ? [] : [{
    reason: "CUDA provider not installed on this machine",
    cases: "*",
  }],
});
