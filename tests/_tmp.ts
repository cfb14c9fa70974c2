/**
 * Scratch directories for tests, kept inside the project so tests need no write access
 * outside it (`.sent/` is git-ignored).
 */

const TEST_TMP_ROOT = ".sent/tmp";

/**
 * Create a fresh scratch directory under `.sent/tmp/`.
 *
 * @param prefix Name prefix that says which test owns the directory.
 * @returns The absolute path of the new directory.
 */
export async function makeTestDir(prefix: string): Promise<string> {
  await Deno.mkdir(TEST_TMP_ROOT, { recursive: true });
  const dir = await Deno.makeTempDir({ dir: TEST_TMP_ROOT, prefix: `${prefix}-` });
  return await Deno.realPath(dir);
}
