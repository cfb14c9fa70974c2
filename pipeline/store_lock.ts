/**
 * The store lock: one writer at a time per artifact store.
 *
 * The lock is an exclusive OS-level lock (`flock` on Linux and macOS, `LockFileEx` on Windows,
 * through `Deno.FsFile.lock`) on the file `<store>/.lock`. The kernel holds it for the process:
 * it stays held however long the process's JS thread is busy (a synchronous stretch of a stage
 * stops timers, but not the lock), and it is dropped the moment the process ends, however it
 * ends, SIGKILL included. So no live run can lose the lock, and no dead run keeps it: there is no
 * heartbeat, no staleness timeout, and no wait after a `kill -9`.
 *
 * The file also holds the owner's pid, host, command and start time, for the "waiting for…"
 * message. Release empties it; the file itself stays (deleting it would let a process that has
 * it open lock a file nobody else can find). A holder still written in the file when the lock
 * is taken is one that ended without releasing it, and {@link AcquireOptions.onAbandoned} names it.
 *
 * Network file systems: flock works on local disks and on NFSv4 (emulated with byte-range locks);
 * put the store on a local disk or NFSv4.
 *
 * Worker processes (`--jobs N`) do not take the lock: the run that started them holds it for
 * them. Each worker holds a *shared* lock on `<store>/.lock.workers` for as long as it lives
 * ({@link holdWorkerLock}), and whoever takes the store lock then waits for an *exclusive* lock
 * on that file, i.e. until no worker of an earlier run is left. A worker exits as soon as its run
 * goes (its stdin closes), so after a `kill -9` of a run that wait is a few milliseconds, and no
 * orphaned worker can write into the store while the next run uses it.
 *
 * @module
 */

/** Who holds the lock (the lock file's content). */
export interface LockHolder {
  /** Process id. */
  pid: number;
  /** Host name. */
  hostname: string;
  /** Command line summary, e.g. `reproduce --jobs 2`. */
  command: string;
  /** ISO time the lock was taken. */
  startedAt: string;
}

/** A held lock. */
export interface StoreLock {
  /** The lock file's path. */
  path: string;
  /** Release the lock (empties the file, unlocks and closes it). */
  release(): Promise<void>;
  /** Release the lock synchronously (for signal handlers that exit right after). */
  releaseSync(): void;
}

/** Options for {@link acquireStoreLock}. */
export interface AcquireOptions {
  /** Command recorded in the lock file. */
  command: string;
  /** Called once when the lock is busy, with its holder (to print a waiting message). */
  onWait?: (holder: LockHolder | null) => void;
  /** Called when the lock is taken from a holder that ended without releasing it. */
  onAbandoned?: (holder: LockHolder | null) => void;
  /** How long the lock may be busy before `onWait` is called. Default 100 ms. */
  waitNoticeMs?: number;
  /** Called once when worker processes of an earlier run are still alive (they are waited for). */
  onWaitWorkers?: () => void;
}

/**
 * The file worker processes hold a shared lock on, beside the store lock.
 * @param lockPath The store lock's path.
 * @returns Its path.
 */
export function workersLockPath(lockPath: string): string {
  return `${lockPath}.workers`;
}

/**
 * In a worker process: hold a shared lock on the workers' lock file until the process ends, so
 * that the next run to take the store lock waits for this worker to be gone.
 *
 * @param lockPath The store lock's path (`<store>/.lock`).
 * @returns When the shared lock is held.
 */
export async function holdWorkerLock(lockPath: string): Promise<void> {
  const file = await Deno.open(workersLockPath(lockPath), {
    read: true,
    write: true,
    create: true,
  });
  await file.lock(false);
  // Kept open (and locked) for the process's lifetime; the kernel drops it when the worker ends.
}

/**
 * Take the store lock, waiting while another process holds it.
 *
 * @param path Lock file path (its folder is created if needed).
 * @param options Command, callbacks.
 * @returns The held lock.
 * @example
 * ```ts
 * import { acquireStoreLock } from "./store_lock.ts";
 * await Deno.mkdir(".sent/tmp", { recursive: true });
 * const dir = await Deno.makeTempDir({ dir: ".sent/tmp" });
 * const lock = await acquireStoreLock(`${dir}/.lock`, { command: "example" });
 * await lock.release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function acquireStoreLock(path: string, options: AcquireOptions): Promise<StoreLock> {
  await Deno.mkdir(path.replace(/\/[^/]+$/, "") || "/", { recursive: true });
  const file = await Deno.open(path, { read: true, write: true, create: true });
  try {
    const locked = file.lock(true);
    const busy = await Promise.race([
      locked.then(() => false),
      delay(options.waitNoticeMs ?? 100).then(() => true),
    ]);
    if (busy) {
      options.onWait?.(parseHolder(await Deno.readTextFile(path).catch(() => "")));
    }
    await locked;
  } catch (error) {
    file.close();
    throw error;
  }
  // Whoever is still written in the file took the lock and never released it.
  const left = readAll(file);
  if (left.trim() !== "") options.onAbandoned?.(parseHolder(left));
  const me: LockHolder = {
    pid: Deno.pid,
    hostname: Deno.hostname(),
    command: options.command,
    startedAt: new Date().toISOString(),
  };
  writeAll(file, JSON.stringify(me) + "\n");
  try {
    await waitForWorkers(path, options);
  } catch (error) {
    file.close();
    throw error;
  }
  return holdLock(path, file);
}

/** Wait until no worker process of an earlier run holds the workers' lock file. */
async function waitForWorkers(path: string, options: AcquireOptions): Promise<void> {
  const workers = await Deno.open(workersLockPath(path), {
    read: true,
    write: true,
    create: true,
  });
  try {
    const locked = workers.lock(true);
    const busy = await Promise.race([
      locked.then(() => false),
      delay(options.waitNoticeMs ?? 100).then(() => true),
    ]);
    if (busy) options.onWaitWorkers?.();
    await locked;
  } finally {
    workers.close(); // drops the exclusive lock: this run's own workers take it shared
  }
}

/**
 * Describe a holder for messages.
 * @param holder Lock holder, or null when the file is unreadable.
 * @returns E.g. `pid 123 on host vm ("reproduce", since 2024-01-01T12:00:00Z)`.
 */
export function describeHolder(holder: LockHolder | null): string {
  if (holder === null) return "a process that has not finished writing the lock file";
  return `pid ${holder.pid} on host ${holder.hostname} ("${holder.command}", since ${holder.startedAt})`;
}

function holdLock(path: string, file: Deno.FsFile): StoreLock {
  let released = false;
  const releaseSync = () => {
    if (released) return;
    released = true;
    try {
      file.truncateSync(0);
    } finally {
      file.close(); // closing drops the lock
    }
  };
  return {
    path,
    release: () => Promise.resolve(releaseSync()),
    releaseSync,
  };
}

function readAll(file: Deno.FsFile): string {
  file.seekSync(0, Deno.SeekMode.Start);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(4096);
  while (true) {
    const n = file.readSync(buffer);
    if (n === null || n === 0) break;
    chunks.push(buffer.slice(0, n));
  }
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

function writeAll(file: Deno.FsFile, text: string): void {
  file.truncateSync(0);
  file.seekSync(0, Deno.SeekMode.Start);
  const bytes = new TextEncoder().encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

function parseHolder(text: string): LockHolder | null {
  try {
    const holder = JSON.parse(text);
    return typeof holder?.pid === "number" ? holder as LockHolder : null;
  } catch {
    return null;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    Deno.unrefTimer(timer);
  });
}
