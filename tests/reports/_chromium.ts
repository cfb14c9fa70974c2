/**
 * Where the Debian package `chromium` puts the browser binary (`/usr/bin/chromium` is a shell
 * wrapper around it). deno.json's `browser` permission set names the same path.
 */
export const CHROMIUM = "/usr/lib/chromium/chromium";
