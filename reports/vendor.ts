/**
 * Files the report takes from npm packages as they are: the browser builds of Vega, Vega-Lite and
 * Vega-Embed, which the page loads from its own folder (no CDN), and the DejaVu fonts that PNG
 * rendering loads explicitly (never the machine's fonts).
 *
 * Each file is listed with the package version pinned in deno.json and its sha256. Reading one
 * checks the digest, so a report is made only from the bytes named here: same inputs ⇒ same
 * site, and bumping a package means editing this table, which changes the report stage's code
 * fingerprint (and so its cache key) as it should.
 *
 * @example
 * ```ts ignore
 * import { readVendorFile, VENDOR_FILES } from "./vendor.ts";
 * const bytes = await readVendorFile(VENDOR_FILES.vega);
 * ```
 *
 * @module
 */

import { sha256 } from "../pipeline/hash.ts";

/** One file of an npm package, pinned by version and digest. */
export interface VendorFile {
  /** npm package name. */
  readonly package: string;
  /** Version pinned in deno.json. */
  readonly version: string;
  /** Path inside the package. */
  readonly file: string;
  /** Hex sha256 of the file. */
  readonly sha256: string;
  /** File name in the report's `vendor/` folder (browser scripts only). */
  readonly as?: string;
}

/** Every vendored file, by role. */
export const VENDOR_FILES = {
  vega: {
    package: "vega",
    version: "6.4.0",
    file: "build/vega.min.js",
    sha256: "8f6a3587cf8d4f42c7e08120e3eb05d067e746d554e39d2dcf52acc0bd5ba28f",
    as: "vega.min.js",
  },
  vegaLite: {
    package: "vega-lite",
    version: "6.5.0",
    file: "build/vega-lite.min.js",
    sha256: "83e215e84e308ee8688fa6503ba0f1cf8a3c05c0d61df2841a0b92bf86809e00",
    as: "vega-lite.min.js",
  },
  vegaEmbed: {
    package: "vega-embed",
    version: "7.3.0",
    file: "build/vega-embed.min.js",
    sha256: "b1455caba2fb1a72fb46025ba0ba1316e2dbc7f0dd40a3f6040172bf9c08ba91",
    as: "vega-embed.min.js",
  },
  font: {
    package: "dejavu-fonts-ttf",
    version: "2.37.3",
    file: "ttf/DejaVuSans.ttf",
    sha256: "7da195a74c55bef988d0d48f9508bd5d849425c1770dba5d7bfc6ce9ed848954",
  },
  fontBold: {
    package: "dejavu-fonts-ttf",
    version: "2.37.3",
    file: "ttf/DejaVuSans-Bold.ttf",
    sha256: "e6476c1b80502924294eed40894c5b18e06c181444ca953e5334262df9c27724",
  },
} as const satisfies Record<string, VendorFile>;

/** The browser scripts, in the order the page loads them (Vega-Embed needs the other two). */
export const BROWSER_SCRIPTS: readonly VendorFile[] = [
  VENDOR_FILES.vega,
  VENDOR_FILES.vegaLite,
  VENDOR_FILES.vegaEmbed,
];

/** The font family the figures use; its files are {@link VENDOR_FILES} `font` and `fontBold`. */
export const FONT_FAMILY = "DejaVu Sans";

/** The project's node_modules folder (deno.json sets nodeModulesDir, so packages live there). */
const NODE_MODULES = new URL("../node_modules/", import.meta.url).pathname;

/**
 * Absolute path of a vendored file inside node_modules.
 *
 * @param entry The file.
 * @returns Its path (whether or not it exists).
 */
export function vendorPath(entry: VendorFile): string {
  return `${NODE_MODULES}${entry.package}/${entry.file}`;
}

/**
 * Read a vendored file and check its digest.
 *
 * @param entry The file.
 * @returns Its bytes.
 * @throws Error naming the file, the digest found and the pinned version when they disagree, or
 *   the install step when the file is missing.
 */
export async function readVendorFile(entry: VendorFile): Promise<Uint8Array> {
  const path = vendorPath(entry);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Error(
      `${path} is missing; expected ${entry.package}@${entry.version} in node_modules (run deno install)`,
    );
  }
  const digest = sha256(bytes);
  if (digest !== entry.sha256) {
    throw new Error(
      `${path} has sha256 ${digest}; expected ${entry.sha256} (${entry.package}@${entry.version} ` +
        "as pinned in deno.json; after a version bump, update reports/vendor.ts)",
    );
  }
  return bytes;
}
