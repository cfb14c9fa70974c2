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
