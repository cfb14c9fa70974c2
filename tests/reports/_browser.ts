/**
 * Opens a published report page in headless Chromium (the Debian package `chromium`, driven by
 * playwright-core) from a local server and prints what happened as one JSON line: console
 * messages, page errors, failed requests, requests that left the site, each figure view's
 * rendered element, and where the screenshot went.
 *
 * Runs in its own process under the `browser` permission set (deno.json): playwright needs the
 * whole environment (its `debug` dependency lists it) and to start the browser binary, which no
 * other task may. Started by tests/reports/browser_test.ts:
 *
 * ```sh
 * deno run -P=browser tests/reports/_browser.ts SITE_DIR PAGE SCREENSHOT.png
 * ```
 *
 * Every request that is not to the local server is aborted and reported, so the test can
 * require that the page makes no network request of any kind.
 *
 * @module
 */

import { chromium } from "playwright-core";
import { CHROMIUM } from "./_chromium.ts";

/** What the driver prints. */
export interface BrowserReport {
  /** Page title. */
  title: string;
  /** Console messages, `type: text`. */
  console: string[];
  /** Uncaught page errors. */
  pageErrors: string[];
  /** Requests that failed or answered ≥ 400, `status url`. */
  failed: string[];
  /** Requests to anything but the local server (aborted). */
  external: string[];
  /** Paths requested from the local server. */
  served: string[];
  /** One entry per figure view. */
  views: {
    figure: string;
    rendered: string | null;
    svgNodes: number;
    width: number;
    height: number;
    canvas: boolean;
  }[];
  /** Screenshot path. */
  screenshot: string;
}

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
  svg: "image/svg+xml",
  png: "image/png",
  css: "text/css",
  csv: "text/csv; charset=utf-8",
  md: "text/markdown; charset=utf-8",
};

/** A static file server for one folder, on a free port of 127.0.0.1. */
function serve(root: string, served: string[]) {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = decodeURIComponent(new URL(request.url).pathname);
    served.push(path);
    if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
    const file = `${root}${path.endsWith("/") ? `${path}index.html` : path}`;
    try {
      const body = await Deno.readFile(file);
      const type = TYPES[file.split(".").pop() ?? ""] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

async function main([root, page, screenshot]: string[]): Promise<BrowserReport> {
  const served: string[] = [];
  const server = serve(root, served);
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const report: BrowserReport = {
    title: "",
    console: [],
    pageErrors: [],
    failed: [],
    external: [],
    served,
    views: [],
    screenshot,
  };
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await context.newPage();
    await tab.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${origin}/`)) return route.continue();
      report.external.push(url);
      return route.abort();
    });
    tab.on("console", (message) => report.console.push(`${message.type()}: ${message.text()}`));
    tab.on("pageerror", (error) => report.pageErrors.push(String(error)));
    tab.on("requestfailed", (request) => report.failed.push(`failed ${request.url()}`));
    tab.on("response", (response) => {
      if (response.status() >= 400) report.failed.push(`${response.status()} ${response.url()}`);
    });
    await tab.goto(`${origin}/${page}`, { waitUntil: "load" });
    await tab.waitForSelector("body[data-figures=done]", { timeout: 60_000 });
    report.title = await tab.title();
    report.views = await tab.$$eval("[data-figure]", (elements) =>
      elements.map((el) => {
        const data = (el as unknown as { dataset: Record<string, string | undefined> }).dataset;
        const svg = el.querySelector("svg");
        const box = (svg ?? el.querySelector("canvas"))?.getBoundingClientRect();
        return {
          figure: data.figure ?? "",
          rendered: data.rendered ?? null,
          svgNodes: svg ? svg.querySelectorAll("path, rect, line, text, symbol, circle").length : 0,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          canvas: el.querySelector("canvas") !== null,
        };
      }));
    await tab.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await browser.close();
    await server.shutdown();
  }
  return report;
}

if (import.meta.main) {
  console.log(JSON.stringify(await main(Deno.args)));
}
