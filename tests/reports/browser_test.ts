/**
 * The published site in a real browser: headless Chromium (Debian package `chromium`, driven by
 * playwright-core through tests/reports/_browser.ts) opens the index and each run page from a
 * local server. No console message, no page error, no failed request, no request outside the
 * site; every figure view holds a drawn SVG. The screenshot of the test run's page is kept at
 * `.sent/artifacts/report-browser.png`.
 *
 * Where the package is not installed (`apt-get install -y chromium`; .ci/run does it), the test
 * is ignored and says so.
 */

import assert from "node:assert/strict";
import { listRunRecords } from "../../pipeline/records.ts";
import { FIGURES } from "../../reports/figures.ts";
import { makeTestDir } from "../_tmp.ts";
import { ROOT, sent } from "../pipeline/_harness.ts";
import type { BrowserReport } from "./_browser.ts";
import { CHROMIUM } from "./_chromium.ts";
import { testPresetRun } from "./_dag.ts";

/** The screenshot the test keeps. */
const SCREENSHOT = `${ROOT}/.sent/artifacts/report-browser.png`;

/** Whether the browser starts at all (`chromium --version`). */
async function chromiumRuns(): Promise<boolean> {
  try {
    const out = await new Deno.Command(CHROMIUM, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const installed = await chromiumRuns();
if (!installed) {
  console.warn(
    `browser_test: ${CHROMIUM} not found: the Debian package "chromium" is not installed ` +
      "(apt-get install -y chromium); the browser test is ignored",
  );
}

/** Open one page of a site in Chromium. */
async function openPage(
  site: string,
  page: string,
  screenshot: string,
  tmp: string,
): Promise<BrowserReport> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-q", "-P=browser", "tests/reports/_browser.ts", site, page, screenshot],
    cwd: ROOT,
    // playwright's temp profiles go under the test folder; its bundled WSL probe reads /proc
    // paths that Deno grants only with --allow-all, and this variable makes the probe lazy.
    env: { TMPDIR: tmp, __IS_WSL_TEST__: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, `browser driver failed:\n${stdout}\n${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as BrowserReport;
}

function assertClean(page: string, report: BrowserReport): void {
  assert.deepEqual(report.console, [], `${page}: console messages`);
  assert.deepEqual(report.pageErrors, [], `${page}: page errors`);
  assert.deepEqual(report.failed, [], `${page}: failed requests`);
  assert.deepEqual(report.external, [], `${page}: requests outside the site`);
}

Deno.test({
  name:
    "the published site opens in headless Chromium with no console message, no failed or outside request, and every figure drawn",
  ignore: !installed,
  async fn() {
    const { root, store } = await testPresetRun();
    const tmp = await makeTestDir("browser");
    const published = await sent(["publish", "--store", store, "--out", `${tmp}/site`], {
      script: "pipeline/cli.ts",
    });
    assert.equal(published.code, 0, published.stderr);

    const index = await openPage(`${tmp}/site`, "index.html", `${tmp}/index.png`, tmp);
    assertClean("index.html", index);
    assert.equal(index.title, "SENT runs");

    const records = await listRunRecords(root);
    const reproduce = records.filter((r) => r.status === "ok" && r.argv[0] === "reproduce").at(-1)!;
    for (const record of records) {
      const page = `runs/${record.id}/index.html`;
      const shot = record === reproduce ? SCREENSHOT : `${tmp}/${record.id}.png`;
      await Deno.mkdir(shot.replace(/\/[^/]+$/, ""), { recursive: true });
      const report = await openPage(`${tmp}/site`, page, shot, tmp);
      assertClean(page, report);
      assert.deepEqual(
        report.served.filter((p) => p.startsWith("/vendor/")),
        ["/vendor/vega.min.js", "/vendor/vega-lite.min.js", "/vendor/vega-embed.min.js"],
      );
      if (record.status === "ok") assert.equal(report.views.length, FIGURES.length, page);
      for (const view of report.views) {
        assert.equal(view.rendered, "true", `${page}: ${view.figure}`);
        assert.ok(
          view.svgNodes > 10 && view.width > 100 && view.height > 100,
          `${page}: ${JSON.stringify(view)}`,
        );
      }
    }
    const png = await Deno.readFile(SCREENSHOT);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.ok(png.length > 20_000, `screenshot of ${png.length} bytes`);
    console.log(`screenshot: ${SCREENSHOT}`);
  },
});
