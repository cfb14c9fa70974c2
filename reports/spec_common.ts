/**
 * What every figure spec shares: the Vega-Lite schema version (matching the vega-lite package
 * pinned in deno.json), the size of a panel, the font (DejaVu Sans, the one PNG rendering loads),
 * the colour scheme of the policies, and number rounding for inlined data.
 *
 * Data is inlined into each spec (`data.values`), so a spec file is a complete figure: it renders
 * the same in the page, in the Vega editor, and through the headless renderer.
 *
 * @example
 * ```ts
 * import { roundValue, topLevel } from "./spec_common.ts";
 * topLevel("Entropy", "Mean token entropy per step").title; // { text: "Entropy", subtitle: "Mean token entropy per step" }
 * roundValue(3.14159265358979); // 3.14159
 * ```
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import { FONT_FAMILY } from "./vendor.ts";

/** Schema of the specs: Vega-Lite 6, as pinned in deno.json. */
export const VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Width of one panel in pixels. */
export const PANEL_WIDTH = 440;

/** Height of one panel in pixels. */
export const PANEL_HEIGHT = 220;

/** Width of one facet panel (Pass@k per eval set, metric rows). */
export const FACET_WIDTH = 260;

/** Significant digits kept in inlined data: beyond any table's precision, and stable bytes. */
export const DATA_DIGITS = 6;

/** Colour scheme of the policy series (Vega's built-in, so no colours are fetched). */
export const POLICY_SCHEME = "tableau10";

/** The spec of a figure. */
export type FigureSpec = TopLevelSpec;

/**
 * Round a number to {@link DATA_DIGITS} significant digits (0 stays 0).
 *
 * @param x A finite number.
 * @returns The rounded number.
 */
export function roundValue(x: number): number {
  return x === 0 ? 0 : Number(x.toPrecision(DATA_DIGITS));
}

/**
 * The top-level fields every figure has.
 *
 * @param title Figure title.
 * @param subtitle One line under the title.
 * @returns Schema, title, background, and config (font, no view border).
 */
export function topLevel(title: string, subtitle: string) {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: { text: title, subtitle },
    description: `${title}: ${subtitle}`,
    background: "white",
    config: {
      font: FONT_FAMILY,
      view: { stroke: null },
      legend: { orient: "right" as const, labelLimit: 220 },
      axis: { labelLimit: 160 },
      // Plain numbers, trailing zeros trimmed: "0", "0.25", "80", "0.00002" (a flat series
      // otherwise prints "0.000000", and "~g" would print "8e+1").
      axisQuantitative: { format: "~r" },
    },
  };
}

/**
 * The colour encoding of the policy series, in table order.
 *
 * @param field The data field holding the label.
 * @param labels Labels in the order of the legend.
 * @returns A colour channel definition.
 */
export function policyColor(field: string, labels: readonly string[]) {
  return {
    field,
    type: "nominal" as const,
    title: "policy",
    scale: { domain: [...labels], scheme: POLICY_SCHEME },
  };
}
