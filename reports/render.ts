/**
 * Rendering figures without a browser: a Vega-Lite spec is compiled with vega-lite, run through
 * Vega's headless view to SVG, and the SVG is rasterised to PNG by resvg with the DejaVu fonts
 * loaded from their npm package (the machine's fonts are never consulted, so a PNG is the same
 * on every machine).
 *
 * Headless Vega measures text with a fixed per-character estimate (there is no canvas in Deno),
 * which is what makes SVG output byte-stable; the browser page measures real glyphs, so its
 * layout may differ by a few pixels from the files.
 *
 * Warnings from either compiler are collected and returned, never printed: the report test
 * requires every figure to compile without any.
 *
 * @example
 * ```ts ignore
 * import { compileSpec, renderPng, renderSvg } from "./render.ts";
 * const spec = { mark: "point", data: { values: [{ x: 1 }] }, encoding: { x: { field: "x", type: "quantitative" } } };
 * const { vega, warnings } = compileSpec(spec); // warnings: []
 * const svg = await renderSvg(spec);
 * const png = await renderPng(svg);
 * ```
 *
 * @module
 */

import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { Resvg } from "@resvg/resvg-js";
import { FONT_FAMILY, readVendorFile, VENDOR_FILES, vendorPath } from "./vendor.ts";

/** What {@link compileSpec} returns. */
export interface Compiled {
  /** The Vega spec. */
  vega: vega.Spec;
  /** Warnings of vega-lite's compiler (empty for a clean spec). */
  warnings: string[];
}

/** A logger that keeps messages instead of printing them (vega's and vega-lite's interface). */
function collectingLogger(into: string[]) {
  let level = 0;
  const logger = {
    level(value?: number) {
      if (value === undefined) return level;
      level = value;
      return logger;
    },
    error: (...args: readonly unknown[]) => {
      into.push(`error: ${args.map(String).join(" ")}`);
      return logger;
    },
    warn: (...args: readonly unknown[]) => {
      into.push(args.map(String).join(" "));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  return logger;
}

/**
 * Compile a Vega-Lite spec to Vega.
 *
 * @param spec The Vega-Lite spec.
 * @returns The Vega spec and the compiler's warnings.
 * @throws Error from vega-lite for a spec it cannot compile.
 */
export function compileSpec(spec: TopLevelSpec): Compiled {
  const warnings: string[] = [];
  // deno-lint-ignore no-explicit-any
  const out = compile(spec, { logger: collectingLogger(warnings) as any });
  return { vega: out.spec as vega.Spec, warnings };
}

/**
 * Parse a compiled Vega spec into a dataflow (what a view runs); throws on an invalid spec.
 *
 * @param spec The Vega spec.
 * @returns The parsed runtime description.
 */
export function parseVega(spec: vega.Spec): vega.Runtime {
  return vega.parse(spec);
}

/**
 * Render a Vega-Lite spec to SVG with Vega's headless view.
 *
 * @param spec The Vega-Lite spec (data inlined).
 * @param warnings Where compiler and runtime warnings go.
 * @returns The SVG document text.
 */
export async function renderSvg(spec: TopLevelSpec, warnings: string[] = []): Promise<string> {
  const compiled = compileSpec(spec);
  warnings.push(...compiled.warnings);
  const view = new vega.View(parseVega(compiled.vega), {
    renderer: "none",
    // deno-lint-ignore no-explicit-any
    logger: collectingLogger(warnings) as any,
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

let fonts: Promise<string[]> | null = null;

/**
 * Paths of the DejaVu font files, checked against their digests once per process. resvg reads
 * them itself (handing it the bytes costs a second per image in copies).
 */
function fontFiles(): Promise<string[]> {
  const entries = [VENDOR_FILES.font, VENDOR_FILES.fontBold];
  fonts ??= Promise.all(entries.map(async (entry) => {
    await readVendorFile(entry);
    return vendorPath(entry);
  }));
  return fonts;
}

/** Options for {@link renderPng}. */
export interface PngOptions {
  /** Pixels per SVG unit (default 2: sharp on high-density screens). */
  scale?: number;
}

/**
 * Rasterise an SVG to PNG with resvg, using only the DejaVu fonts of the npm package.
 *
 * @param svg SVG document text.
 * @param options Scale.
 * @returns PNG bytes.
 */
export async function renderPng(svg: string, options: PngOptions = {}): Promise<Uint8Array> {
  const resvg = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: options.scale ?? 2 },
    font: {
      fontFiles: await fontFiles(),
      loadSystemFonts: false,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
  });
  return new Uint8Array(resvg.render().asPng());
}
