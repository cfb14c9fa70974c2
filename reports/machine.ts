/**
 * A description of the machine building a report: CPU model, logical cores, memory and OS (no
 * host name). Stage manifests record only the OS and architecture of the machines that ran the
 * stages; this is what the report adds.
 *
 * @example
 * ```ts
 * import { describeMachine } from "./machine.ts";
 * describeMachine().cores > 0; // true
 * ```
 *
 * @module
 */

import { cpus } from "node:os";

/** The machine a report was built on. */
export interface Machine {
  /** CPU model name. */
  cpu: string;
  /** Logical cores. */
  cores: number;
  /** Total memory in GiB (one decimal). */
  memoryGiB: number;
  /** OS, kernel release and architecture. */
  os: string;
}

/**
 * Describe this machine.
 *
 * @returns CPU, cores, memory and OS.
 */
export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model?.trim() || "unknown",
    cores: list.length || navigator.hardwareConcurrency,
    memoryGiB: Math.round((Deno.systemMemoryInfo().total / 2 ** 30) * 10) / 10,
    os: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
  };
}
