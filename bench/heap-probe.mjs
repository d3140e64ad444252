// Loaded into a bridge process with `--import` by bench/rss-rounds.mjs. On SIGUSR2 it appends one JSON
// line to .bench-tmp/heap-probe/<pid>.jsonl: the process's memory as it is, and, when the process was
// started with --expose-gc, again after two full collections (what is live, and what a full collection
// gives back). Not part of the bridge: only the benchmark loads it.
import { appendFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../.bench-tmp/heap-probe/', import.meta.url));
mkdirSync(dir, { recursive: true });
const MiB = 2 ** 20;
const snapshot = () => {
  const { rss, heapTotal, heapUsed, arrayBuffers } = process.memoryUsage();
  return {
    rss: rss / MiB,
    heapTotal: heapTotal / MiB,
    heapUsed: heapUsed / MiB,
    arrayBuffers: arrayBuffers / MiB,
  };
};
process.on('SIGUSR2', () => {
  const before = snapshot();
  let after;
  if (typeof globalThis.gc === 'function') {
    globalThis.gc();
    globalThis.gc();
    after = snapshot();
  }
  appendFileSync(`${dir}${process.pid}.jsonl`, `${JSON.stringify({ before, after })}\n`);
});
