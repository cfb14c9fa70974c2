/**
 * The `pipeline` permission set of deno.json, spelled out as `deno run` flags, for the processes
 * the pipeline starts itself: worker processes of `--jobs N` and SLURM jobs run with
 * {@link WORKER_FLAGS}, tests and benchmarks start the CLI with {@link PIPELINE_FLAGS}. Spelled
 * out, the flags need no deno.json beside the process and print no experimental-config warning.
 *
 * @module
 */

/** What a worker process may do: read the project and the shared datasets, write the project. */
export const WORKER_FLAGS: readonly string[] = [
  "--allow-read=.,../shared/datasets",
  "--allow-write=.",
  "--allow-env=SENT_*,VK_ICD_FILENAMES,VK_DRIVER_FILES,XDG_RUNTIME_DIR,LOG_TOKENS,LOG_STREAM",
  "--allow-sys=cpus,hostname,osRelease,systemMemoryInfo,networkInterfaces",
  "--allow-ffi",
  "--no-prompt",
];

/**
 * The whole `pipeline` set: a worker's permissions plus starting `deno` itself, which `--jobs N`
 * needs for its worker processes (and nothing else may be started). Spelled out, this process's
 * own executable is allowed too, so workers start even where `deno` is not on PATH.
 */
export const PIPELINE_FLAGS: readonly string[] = [
  ...WORKER_FLAGS,
  `--allow-run=deno,${Deno.execPath()}`,
];
