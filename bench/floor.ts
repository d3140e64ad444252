// The per-byte work no bridge can avoid besides moving the bytes: SHA-256 at the hardware's rate
// (OpenSSL, SHA-NI where the CPU has it) and one search for the multipart delimiter at
// Buffer#indexOf's rate, each over the same bytes in 64 KiB chunks, as a socket read delivers them.
// Run in its own process between the upload runs; prints CPU seconds per GiB as JSON.
// Usage: node floor.js <bytes>
import { createHash } from 'node:crypto';
import { BLOCK, MiB } from './bodies.js';

const CHUNK = 64 * 1024;
const bytes = Number(process.argv[2] ?? 1024 * MiB);
const delimiter = Buffer.from('\r\n------benchBoundary0123456789abcdef01234567');

function cpuSeconds(work: () => void): number {
  const before = process.cpuUsage();
  work();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

function eachChunk(visit: (chunk: Buffer) => void): void {
  for (let done = 0; done < bytes; done += MiB) {
    for (let offset = 0; offset < MiB; offset += CHUNK) visit(BLOCK.subarray(offset, offset + CHUNK));
  }
}

// Warm up both, so neither pays for compiling.
createHash('sha256').update(BLOCK).digest();
BLOCK.indexOf(delimiter);

const hash = createHash('sha256');
const sha256 = cpuSeconds(() => eachChunk((chunk) => hash.update(chunk)));
hash.digest();
let found = 0;
const scan = cpuSeconds(() =>
  eachChunk((chunk) => {
    if (chunk.indexOf(delimiter) >= 0) found++;
  }),
);
const gib = bytes / (1024 * MiB);
process.stdout.write(`${JSON.stringify({ sha256PerGiB: sha256 / gib, scanPerGiB: scan / gib, found })}\n`);
