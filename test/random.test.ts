import { describe, expect, it } from 'vitest';
import { randomString } from '../src/random.js';

describe('pooled random ids', () => {
  it('gives each id fresh bytes, across pool refills', () => {
    // 16-byte ids: 256 per 4 KiB pool, so 2,000 of them cross several refills.
    const ids = Array.from({ length: 2000 }, () => randomString(16, 'base64url'));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('encodes as asked, with the length asked', () => {
    expect(randomString(8, 'hex')).toMatch(/^[0-9a-f]{16}$/);
    expect(randomString(6, 'base64url')).toMatch(/^[A-Za-z0-9_-]{8}$/);
  });

  it('spreads its bytes (every byte value turns up over 64 KiB)', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 4096; i++)
      for (const byte of Buffer.from(randomString(16, 'hex'), 'hex')) seen.add(byte);
    expect(seen.size).toBe(256);
  });

  it('refuses more than a pool at once', () => {
    expect(() => randomString(4097, 'hex')).toThrow(RangeError);
  });
});
