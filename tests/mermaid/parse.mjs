// Parse each file named on the command line with Mermaid's own parser (mermaid.parse),
// under jsdom for the DOM it expects. Prints one JSON line per file: {"file", "ok",
// "type"} or {"file", "ok": false, "error"}; exits 1 when any file fails.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    const parsed = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(JSON.stringify({ file, ok: true, type: parsed.diagramType }));
  } catch (err) {
    failed = true;
    console.log(JSON.stringify({ file, ok: false, error: String(err.message || err) }));
  }
}
process.exit(failed ? 1 : 0);
