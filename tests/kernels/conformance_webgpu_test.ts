import { deviceFactory, runConformance } from "./conformance_cases.ts";

// On CI this runs on SwiftShader (software Vulkan), see kernels/swiftshader.ts. WebGPU results
// are not bitwise equal to CPU (different reduction orders), hence a looser tolerance.
runConformance({ device: "webgpu", createProgram: deviceFactory("webgpu"), atol: 1e-4 });
