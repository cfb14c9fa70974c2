/**
 * Versions of the packages that make a report (Vega, Vega-Lite, Vega-Embed, arquero, resvg, the
 * DejaVu fonts), read from their installed package.json files for the provenance section.
 *
 * @example
 * ```ts ignore
 * import { reportToolVersions } from "./tool_versions.ts";
 * (await reportToolVersions())["vega-lite"]; // "6.5.0"
 * ```
 *
 * @module
 */

/** The report's packages. */
export const REPORT_PACKAGES: readonly string[] = [
  "vega",
  "vega-lite",
  "vega-embed",
  "arquero",
  "@resvg/resvg-js",
  "dejavu-fonts-ttf",
];

const NODE_MODULES = new URL("../node_modules/", import.meta.url).pathname;

/**
 * Installed versions of the report's packages.
 *
 * @returns Package name → version ("not installed" when its package.json is missing).
 */
export async function reportToolVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of REPORT_PACKAGES) {
    try {
      const json = JSON.parse(await Deno.readTextFile(`${NODE_MODULES}${name}/package.json`));
      out[name] = String(json.version);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      out[name] = "not installed";
    }
  }
  return out;
}
