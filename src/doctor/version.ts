/**
 * The version of ummu, as a constant: it is read the same way from the
 * repository, the JSR package (whose modules are https: URLs, so no file can
 * be read beside them) and the npm package. tests/doctor.test.ts checks that
 * it equals deno.json's and package.json's version.
 * @module
 */

/** The version of this ummu (deno.json and package.json `version`). */
export const VERSION = "0.1.0";
