import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MeasuringStream } from '../src/multipart/measure.js';
import { ReplayMemory, ReplayablePart } from '../src/multipart/replay.js';

/** Drains a stream, as undici would consume a first attempt. */
async function consume(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function partOf(bytes: Buffer, chunk: number) {
  const chunks = Array.from({ length: Math.ceil(bytes.length / chunk) }, (_, i) =>
    bytes.subarray(i * chunk, (i + 1) * chunk),
  );
  return Readable.from(chunks);
}

/** A part kept from its first byte, as the routes set it up. */
function replayable(meter: MeasuringStream, limit: number, memory: ReplayMemory): ReplayablePart {
  meter.keep(limit, memory);
  return new ReplayablePart(meter);
}

describe('measured parts', () => {
  // Found by the soak under load: Cosmos DB answered 409 early, undici gave up the first attempt with
  // the rest of the part unread, the whole part had come in meanwhile, and waiting for its measurement
  // hung (it waited for the unread bytes to be read).
  it('are measured once all their bytes came in, read or not', { timeout: 5_000 }, async () => {
    const bytes = Buffer.from(Array.from({ length: 30_000 }, (_, i) => (i * 7) % 256));
    // As fileUpload sets it up: 64 KiB read ahead, so a small part fits in whole, unread.
    const meter = new MeasuringStream(1_000_000, 'MAX_PART_BYTES', 64 * 1024);
    await pipeline(partOf(bytes, 4096), meter);
    expect(meter.readableLength).toBe(bytes.length);
    expect(await meter.measured()).toEqual({
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  });
});

describe('replayable parts', () => {
  it('stream at once, replay whole, and give their memory back', async () => {
    const memory = new ReplayMemory(1000);
    const bytes = Buffer.from(Array.from({ length: 600 }, (_, i) => i % 256));
    const meter = new MeasuringStream(10_000);
    const done = pipeline(partOf(bytes, 64), meter);
    const part = replayable(meter, 800, memory);
    expect(await consume(part.first)).toEqual(bytes);
    await done;
    expect(memory.take(401)).toBe(false); // 600 of 1000 are kept
    expect(await part.replay()).toEqual(bytes);
    part.release();
    expect(memory.take(1000)).toBe(true);
  });

  it('read the rest of the part for a replay when the first attempt stopped early', async () => {
    const memory = new ReplayMemory(10_000);
    const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) % 256));
    const meter = new MeasuringStream(10_000);
    const done = pipeline(partOf(bytes, 100), meter);
    const part = replayable(meter, 8000, memory);
    // The first attempt reads one chunk, then Cosmos DB answers 429.
    await new Promise((resolve) => part.first.once('readable', resolve));
    part.first.read(100);
    expect(await part.replay()).toEqual(bytes);
    await done;
    part.release();
    expect(memory.take(10_000)).toBe(true);
  });

  it('stop keeping, and return what they kept, past their own limit or the shared memory', async () => {
    for (const [limit, shared] of [
      [100, 10_000],
      [10_000, 100],
    ] as const) {
      const memory = new ReplayMemory(shared);
      const meter = new MeasuringStream(10_000);
      const done = pipeline(partOf(Buffer.alloc(500, 1), 50), meter);
      const part = replayable(meter, limit, memory);
      expect((await consume(part.first)).length).toBe(500);
      await done;
      expect(await part.replay()).toBeUndefined();
      expect(memory.take(shared)).toBe(true);
    }
  });
});
