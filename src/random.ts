import { randomFillSync } from 'node:crypto';

/**
 * Random ids from a pool refilled from the CSPRNG a few KiB at a time, as Node's own `randomUUID`
 * does: a `randomBytes` call per id costs a trip into OpenSSL per request (about 1.5 % of a small
 * create's CPU, docs/performance.md). Each byte is handed out once.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let used = POOL_BYTES;

/** `bytes` fresh random bytes (at most POOL_BYTES), encoded. */
export function randomString(bytes: number, encoding: 'base64url' | 'hex'): string {
  if (bytes > POOL_BYTES) throw new RangeError(`at most ${POOL_BYTES} random bytes at a time`);
  if (used + bytes > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const value = pool.toString(encoding, used, used + bytes);
  used += bytes;
  return value;
}
