// After `openapi-ts`: the generated client's doc comments link to package pages on a registry's web site; the
// project never commits a registry's host name, so such links become the package's name alone.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = process.env.OPENAPI_TS_OUTPUT ?? "./src/client";
const link = /\{@link https?:\/\/[^\s}]*\/package\/[^\s}]*\s+(`[^`]+`)\}/g;

function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".ts")) {
      const text = readFileSync(path, "utf8");
      const scrubbed = text.replace(link, "$1");
      if (scrubbed !== text) writeFileSync(path, scrubbed);
      if (/https?:\/\/[^\s}]*\/package\//.test(scrubbed)) throw new Error(`${path} still links a package page`);
    }
  }
}
walk(root);
