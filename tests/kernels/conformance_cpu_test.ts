import { deviceFactory, runConformance } from "./conformance_cases.ts";

runConformance({ device: "cpu", createProgram: deviceFactory("cpu"), atol: 2e-5 });
