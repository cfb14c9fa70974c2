/**
 * Errors that are the user's to fix (a bad flag, a path that is not a store, a corrupt state
 * file): the CLI prints their message as one line and exits 2, with no stack trace. Anything
 * else that escapes a command is a bug and keeps its stack.
 *
 * @module
 */

/** A usage or input error: one line naming the thing, the bad value and what was expected. */
export class UsageError extends Error {
  /**
   * @param message The whole message, one line.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An `--store` path that cannot be used as an artifact store. */
export class StoreError extends UsageError {
  /** The store path as resolved. */
  readonly path: string;

  /**
   * @param path Store path.
   * @param message What is wrong and what was expected.
   */
  constructor(path: string, message: string) {
    super(message);
    this.name = "StoreError";
    this.path = path;
  }
}

/**
 * Error classes that mean a bug in the code (not bad input or bad data): their stack is worth
 * showing. Everything else (missing files, bad rows, refused permissions, unknown names, errors
 * a stage throws with a message for the user) is reported by its message alone.
 */
const BUG_ERRORS: ReadonlySet<string> = new Set([
  "TypeError",
  "ReferenceError",
  "RangeError",
  "SyntaxError",
  "EvalError",
  "URIError",
  "AssertionError",
]);

/**
 * Whether an error is a bug in the code, whose stack trace should be shown.
 *
 * @param error Anything thrown.
 * @returns True for the built-in programming-error classes and failed assertions.
 */
export function isBug(error: unknown): boolean {
  return error instanceof Error && BUG_ERRORS.has(error.name);
}

/**
 * One line for an error of `node:util`'s `parseArgs` (strict mode), naming the flag.
 *
 * @param error What `parseArgs` threw.
 * @param flags Flag name → the value it takes (`"DIR"`), or `null` for a switch: listed in the
 *   message, in this order.
 * @returns E.g. `unknown flag --bogus; flags: --out DIR, --json` or `flag --out needs a value
 *   (--out DIR)`.
 */
export function argsErrorMessage(
  error: Error,
  flags: Readonly<Record<string, string | null>>,
): string {
  const list = Object.entries(flags).map(([name, value]) => `--${name}${value ? ` ${value}` : ""}`)
    .join(", ");
  const unknown = error.message.match(/Unknown option '([^']+)'/);
  if (unknown) return `unknown flag ${unknown[1]}; flags: ${list}`;
  const missing = error.message.match(/Option '(?:-\w, )?(--[\w-]+)[^']*' argument missing/);
  if (missing) {
    return `flag ${missing[1]} needs a value (${missing[1]} ${
      flags[missing[1].slice(2)] ?? "VALUE"
    })`;
  }
  const unexpected = error.message.match(/Option '(--[\w-]+)' does not take an argument/);
  if (unexpected) return `flag ${unexpected[1]} takes no value; flags: ${list}`;
  return error.message.split("\n")[0];
}
