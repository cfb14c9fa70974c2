/**
 * Small HTML helpers: escaping text and attributes, and JSON that is safe inside a `<script>`
 * element (no `</script>` or `<!--` can end it early).
 *
 * @example
 * ```ts
 * import { escapeHtml, scriptJson } from "./html.ts";
 * escapeHtml('a < b & "c"'); // "a &lt; b &amp; &quot;c&quot;"
 * scriptJson({ t: "</script>" }); // '{"t":"\\u003c/script>"}'
 * ```
 *
 * @module
 */

const ENTITIES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escape text for HTML content or a quoted attribute.
 *
 * @param text Any text.
 * @returns The escaped text.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/**
 * JSON for an inline `<script type="application/json">`: every `<` is written as `\u003c`, which
 * JSON.parse reads back unchanged.
 *
 * @param value A JSON value.
 * @returns JSON text.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}
