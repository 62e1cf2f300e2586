// Parse each Mermaid document given as a file argument with Mermaid's own parser.
// Exit 0 when all parse; otherwise print the parser's message and exit 1.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

// Mermaid's sanitizer needs a DOM, even to parse.
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');

let failed = false;
for (const path of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(path, 'utf8'));
    console.log(`${path}: ${result.diagramType}`);
  } catch (error) {
    failed = true;
    console.log(`${path}: ${String(error.message ?? error).split('\n').slice(0, 4).join(' | ')}`);
  }
}
process.exit(failed ? 1 : 0);
