/**
 * Is the execution provider a run asks for usable on this machine? Checked once, before any
 * stage runs, so that `--device cuda` on a machine without CUDA fails at once with the install
 * step, rather than after the stages that do not need the device (or never, when none does).
 *
 * One probe per device, cheap and without creating an ORT session:
 *
 * | device   | usable when                                                                   |
 * | -------- | ----------------------------------------------------------------------------- |
 * | `cpu`    | always                                                                        |
 * | `webgpu` | always: without a Vulkan driver the engine uses SwiftShader (kernels/swiftshader.ts) |
 * | `cuda`   | onnxruntime-node lists a CUDA backend for this platform (`listSupportedBackends`), its provider libraries are installed beside the binding (they are not bundled: the package's postinstall downloads them), and the CUDA 12 runtime, cuBLAS and cuDNN 9 libraries load |
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import type { Device } from "./stage.ts";

/** A device the run cannot use here. */
export class DeviceError extends UsageError {
  /** The device asked for. */
  readonly device: Device;

  /**
   * @param device The device.
   * @param message What is missing and how to install it.
   */
  constructor(device: Device, message: string) {
    super(message);
    this.name = "DeviceError";
    this.device = device;
  }
}

/** A probe: `null` when the device is usable, else what is missing. */
type Probe = () => Promise<string | null>;

/** Per platform: ORT's CUDA provider libraries and the CUDA libraries they load. */
const CUDA_LIBRARIES: Readonly<Record<string, { provider: string[]; cuda: string[] }>> = {
  linux: {
    provider: ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"],
    cuda: ["libcudart.so.12", "libcublas.so.12", "libcudnn.so.9"],
  },
  windows: {
    provider: ["onnxruntime_providers_shared.dll", "onnxruntime_providers_cuda.dll"],
    cuda: ["cudart64_12.dll", "cublas64_12.dll", "cudnn64_9.dll"],
  },
};

const PROBES: Readonly<Record<Device, Probe>> = {
  cpu: () => Promise.resolve(null),
  webgpu: () => Promise.resolve(null),
  cuda: probeCuda,
};

/**
 * Fail when the device cannot be used on this machine.
 *
 * @param device Execution provider of the run.
 * @throws {DeviceError} Naming what is missing and the install step.
 */
export async function checkDevice(device: Device): Promise<void> {
  const missing = await PROBES[device]();
  if (missing === null) return;
  throw new DeviceError(device, `--device ${device}: ${missing}`);
}

async function probeCuda(): Promise<string | null> {
  const { CUDA_INSTALL_HINT } = await import("../kernels/session.ts");
  const ort = await import("onnxruntime-node");
  const unavailable = (why: string) =>
    `ONNX Runtime's CUDA execution provider is not available here (${why}); ${CUDA_INSTALL_HINT}`;
  const backend = ort.listSupportedBackends().find((b: { name: string }) => b.name === "cuda");
  const libraries = CUDA_LIBRARIES[Deno.build.os];
  if (backend === undefined || libraries === undefined || Deno.build.arch !== "x86_64") {
    return unavailable(
      `onnxruntime-node has no CUDA backend for ${Deno.build.os}-${Deno.build.arch}`,
    );
  }
  if (!(backend as { bundled?: boolean }).bundled) {
    const dir = bindingDir();
    const absent = libraries.provider.filter((file) => !isFile(`${dir}/${file}`));
    if (absent.length > 0) return unavailable(`missing ${absent.join(", ")} in ${dir}`);
  }
  for (const library of libraries.cuda) {
    try {
      Deno.dlopen(library, {}).close();
    } catch (error) {
      return unavailable(
        `${library} does not load: ${
          (error as Error).message.replace(/^(Could not open library: )+/, "")
        }`,
      );
    }
  }
  return null;
}

/** Folder of onnxruntime-node's native binding for this platform. */
function bindingDir(): string {
  const os = Deno.build.os === "windows" ? "win32" : Deno.build.os;
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  return new URL(`../bin/napi-v6/${os}/${arch}`, import.meta.resolve("onnxruntime-node")).pathname;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
