// One download, in a process of its own so the reader never shares an event loop with what it
// measures: `node download-client.js '<json job>'`, prints one JSON line with what it read.
import { request } from 'node:http';

interface Job {
  url: string;
  headers?: Record<string, string>;
  /** Read no faster than this (a phone on a slow network); as fast as possible when unset. */
  bytesPerSecond?: number;
  /** Stop (abort) after this long; read to the end when unset. */
  maxSeconds?: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const started = performance.now();
let bytes = 0;
let status = 0;

function finish(ended: boolean, error?: string): void {
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ status, bytes, seconds, ended, ...(error ? { error } : {}) }));
  process.exit(0);
}

const req = request(job.url, { headers: job.headers }, (res) => {
  status = res.statusCode ?? 0;
  res.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (job.bytesPerSecond === undefined) return;
    // Ahead of the allowed rate: stop reading until the schedule catches up (TCP then holds the sender).
    const dueMs = (bytes / job.bytesPerSecond) * 1000;
    const elapsedMs = performance.now() - started;
    if (dueMs > elapsedMs) {
      res.pause();
      setTimeout(() => res.resume(), dueMs - elapsedMs);
    }
  });
  res.on('end', () => finish(true));
  res.on('error', (err) => finish(false, err.message));
});
req.on('error', (err) => finish(false, err.message));
req.end();
if (job.maxSeconds !== undefined) {
  setTimeout(() => {
    req.destroy();
    finish(false);
  }, job.maxSeconds * 1000);
}
