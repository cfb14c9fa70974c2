/**
 * Progress reporting: a redrawn bar with rate and ETA on a terminal; when output goes to a file
 * or a pipe, plain lines at each 10 % step that comes at least 1 s after the previous line, and
 * a final line, so logs stay short.
 *
 * @example
 * ```ts
 * import { createProgress } from "./progress.ts";
 * const bar = createProgress(100, { label: "steps" });
 * for (let i = 0; i < 100; i++) bar.tick();
 * bar.done();
 * ```
 *
 * @module
 */

import type { Progress } from "./stage.ts";

/** Options for {@link createProgress}. */
export interface ProgressOptions {
  /** Text before the bar, e.g. the node id and what is counted. */
  label: string;
  /** Draw a bar (true) or print plain lines (false). Default: whether stderr is a terminal. */
  tty?: boolean;
  /** Where text goes. Default: stderr. */
  write?: (text: string) => void;
  /** Clock in milliseconds. Default: `performance.now`. */
  now?: () => number;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;
const PLAIN_LINE_MS = 1000;

/**
 * Start a progress reporter.
 *
 * @param total Units of work (≥ 0).
 * @param options Label, output mode, sink, clock.
 * @returns The reporter.
 */
export function createProgress(total: number, options: ProgressOptions): Progress {
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const encoder = new TextEncoder();
  const write = options.write ?? ((text: string) => Deno.stderr.writeSync(encoder.encode(text)));
  const now = options.now ?? (() => performance.now());
  const start = now();
  let done = 0;
  let lastDraw = -Infinity;
  let lastDecile = -1;
  let printedAt = -1; // `done` count of the last plain line
  let finished = false;

  const line = () => {
    const elapsed = (now() - start) / 1000;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const eta = done > 0 && done < total ? (elapsed / done) * (total - done) : 0;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const stats = `${done}/${total} ${(100 * fraction).toFixed(0)}% ${formatSeconds(elapsed)}` +
      (done < total ? ` ETA ${formatSeconds(eta)}` : "") + ` ${rate.toFixed(rate < 10 ? 2 : 0)}/s`;
    if (!tty) return `${options.label} ${stats}`;
    const filled = Math.round(fraction * BAR_WIDTH);
    return `${options.label} [${"#".repeat(filled)}${".".repeat(BAR_WIDTH - filled)}] ${stats}`;
  };

  const report = (force: boolean) => {
    if (tty) {
      const t = now();
      if (force || t - lastDraw >= REDRAW_MS) {
        write(`\r\x1b[2K${line()}`);
        lastDraw = t;
      }
      return;
    }
    const decile = total > 0 ? Math.floor((10 * done) / total) : 10;
    const t = now();
    const due = decile > lastDecile && t - lastDraw >= PLAIN_LINE_MS;
    if ((force && printedAt !== done) || due) {
      lastDecile = decile;
      lastDraw = t;
      printedAt = done;
      write(`${line()}\n`);
    }
  };

  return {
    tick(n = 1) {
      if (finished) return;
      done = Math.min(total, done + n);
      report(false);
    },
    done() {
      if (finished) return;
      finished = true;
      done = total;
      report(true);
      if (tty) write("\n");
    },
  };
}

/**
 * Format seconds as `m:ss` (or `h:mm:ss`).
 * @param seconds Duration.
 * @returns Text.
 */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}
