/**
 * The store lock: one writer at a time per artifact store.
 *
 * The lock is a file created with O_EXCL (`createNew`), holding the owner's pid, host, command
 * and start time. Whoever fails to create it waits, printing once who holds it. A lock whose
 * owner is gone is stale and is broken, by the first rule in {@link LIVENESS_RULES} that
 * applies:
 *
 * | rule        | applies when                                   | stale when                     |
 * | ----------- | ---------------------------------------------- | ------------------------------ |
 * | `procfs`    | same host and `/proc` is readable              | `/proc/<pid>` does not exist   |
 * | `heartbeat` | always (another host, or no read access to /proc) | not touched for `staleAfterMs` |
 *
 * The owner touches the file every `heartbeatMs`, so a SIGKILLed owner's lock goes stale within
 * `staleAfterMs` (default 30 s, or `SENT_LOCK_STALE_MS`) even where `/proc` cannot be read.
 * Breaking a stale lock is itself guarded by a second O_EXCL file (`<lock>.break`), so two
 * waiters cannot both break it and then both take it.
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
  /** Release the lock (removes the file). */
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
  /** Called when a stale lock is broken, with the rule that judged it stale. */
  onStale?: (holder: LockHolder | null, reason: string) => void;
  /** Heartbeat age after which a lock is stale. Default 30 s or `SENT_LOCK_STALE_MS`. */
  staleAfterMs?: number;
  /** Owner's heartbeat period. Default `staleAfterMs / 6`. */
  heartbeatMs?: number;
  /** Poll period while waiting. Default 150 ms. */
  pollMs?: number;
}

/** What a liveness rule sees about a lock. */
interface LockView {
  holder: LockHolder | null;
  ageMs: number;
  staleAfterMs: number;
}

/** A rule that can judge a lock stale; `null` when it does not apply. */
interface LivenessRule {
  name: string;
  judge(view: LockView): Promise<string | null | false>;
}

/**
 * Liveness rules, most precise first. `judge` returns a reason (stale), `false` (alive) or
 * `null` (rule does not apply).
 */
const LIVENESS_RULES: readonly LivenessRule[] = [
  {
    name: "procfs",
    async judge({ holder }) {
      if (holder === null || holder.hostname !== Deno.hostname()) return null;
      const access = await Deno.permissions.query({ name: "read", path: "/proc" });
      if (access.state !== "granted") return null;
      try {
        await Deno.stat(`/proc/${holder.pid}`);
        return false;
      } catch (e) {
        // Deno asks for --allow-all to stat /proc/<pid>; without it this rule cannot tell.
        if (!(e instanceof Deno.errors.NotFound)) return null;
        return `process ${holder.pid} is not running`;
      }
    },
  },
  {
    name: "heartbeat",
    judge({ ageMs, staleAfterMs }) {
      return Promise.resolve(
        ageMs > staleAfterMs
          ? `no heartbeat for ${(ageMs / 1000).toFixed(1)} s (stale after ${staleAfterMs / 1000} s)`
          : false,
      );
    },
  },
];

/**
 * Take the store lock, waiting while another live process holds it.
 *
 * @param path Lock file path.
 * @param options Command, callbacks, timings.
 * @returns The held lock.
 */
export async function acquireStoreLock(path: string, options: AcquireOptions): Promise<StoreLock> {
  const staleAfterMs = options.staleAfterMs ??
    (Number(Deno.env.get("SENT_LOCK_STALE_MS")) || 30_000);
  const heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(staleAfterMs / 6));
  const pollMs = options.pollMs ?? 150;
  await Deno.mkdir(path.replace(/\/[^/]+$/, ""), { recursive: true });
  const me: LockHolder = {
    pid: Deno.pid,
    hostname: Deno.hostname(),
    command: options.command,
    startedAt: new Date().toISOString(),
  };
  let announced = false;
  while (true) {
    if (await tryCreate(path, me)) return holdLock(path, me, heartbeatMs);
    const view = await inspect(path, staleAfterMs);
    if (view === null) continue; // released between our attempt and the look
    const stale = await judgeStale(view);
    if (stale !== null) {
      if (await breakLock(path, view, staleAfterMs)) options.onStale?.(view.holder, stale);
      continue;
    }
    if (!announced) {
      options.onWait?.(view.holder);
      announced = true;
    }
    await delay(pollMs);
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

async function tryCreate(path: string, me: LockHolder): Promise<boolean> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
  try {
    await file.write(new TextEncoder().encode(JSON.stringify(me) + "\n"));
  } finally {
    file.close();
  }
  return true;
}

function holdLock(path: string, me: LockHolder, heartbeatMs: number): StoreLock {
  const timer = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, heartbeatMs);
  Deno.unrefTimer(timer);
  let released = false;
  const isMine = (current: LockHolder | null) =>
    current !== null && current.pid === me.pid && current.startedAt === me.startedAt;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      if (isMine(await readHolder(path))) await Deno.remove(path).catch(() => {});
    },
    releaseSync() {
      if (released) return;
      released = true;
      clearInterval(timer);
      let current: LockHolder | null = null;
      try {
        current = JSON.parse(Deno.readTextFileSync(path));
      } catch {
        // Unreadable: not ours to remove.
      }
      if (isMine(current)) {
        try {
          Deno.removeSync(path);
        } catch {
          // Already gone.
        }
      }
    },
  };
}

async function inspect(path: string, staleAfterMs: number): Promise<LockView | null> {
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(path);
  } catch {
    return null;
  }
  const ageMs = Date.now() - (stat.mtime?.getTime() ?? Date.now());
  return { holder: await readHolder(path), ageMs, staleAfterMs };
}

async function judgeStale(view: LockView): Promise<string | null> {
  for (const rule of LIVENESS_RULES) {
    const verdict = await rule.judge(view);
    if (verdict === false) return null;
    if (typeof verdict === "string") return `${verdict} [${rule.name}]`;
  }
  return null;
}

/** Remove a stale lock under the break guard; true if this process removed it. */
async function breakLock(path: string, seen: LockView, staleAfterMs: number): Promise<boolean> {
  const guard = `${path}.break`;
  const me: LockHolder = {
    pid: Deno.pid,
    hostname: Deno.hostname(),
    command: "break",
    startedAt: "",
  };
  if (!(await tryCreate(guard, me))) {
    // Another waiter is breaking it; clear a guard left behind by a killed breaker.
    const view = await inspect(guard, staleAfterMs);
    if (view !== null && view.ageMs > staleAfterMs) await Deno.remove(guard).catch(() => {});
    await delay(50);
    return false;
  }
  try {
    const now = await inspect(path, staleAfterMs);
    const same = now !== null &&
      JSON.stringify(now.holder) === JSON.stringify(seen.holder) &&
      (await judgeStale(now)) !== null;
    if (same) await Deno.remove(path).catch(() => {});
    return same;
  } finally {
    await Deno.remove(guard).catch(() => {});
  }
}

async function readHolder(path: string): Promise<LockHolder | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as LockHolder;
  } catch {
    return null;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
