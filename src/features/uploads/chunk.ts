import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import type { IHasher } from 'hash-wasm';
import { BridgeError } from '../../http/errors.js';
import type { Checksum } from './protocol.js';
import { blockId } from './state.js';
import { storageError } from './storage.js';

/**
 * Bytes per staged block. A PATCH holds at most two (one filling from the caller, one being staged),
 * so memory per PATCH stays near 8 MiB whatever its size; a dropped connection loses at most the block
 * that was filling, and that one is staged short rather than lost.
 */
export const BLOCK_BYTES = 4 * 1024 * 1024;

/**
 * While a long PATCH streams, what it staged is recorded at most this often: an instance that dies
 * mid-PATCH loses at most this much of the upload's progress. A PATCH records what it staged once
 * more when it ends (the caller does), so an 8 MiB chunk costs one state write, not one per block.
 */
export const CHECKPOINT_MS = 10_000;

export interface StagedBlocks {
  /** Blocks under this request's tag, in sequence after those already recorded. */
  blocks: number;
  bytes: number;
  /** The SHA-256 state after them (blob mode), when a hasher runs. */
  hash: string | undefined;
}

export interface ChunkTarget {
  data: BlockBlobClient;
  /** This request's block id tag (hex, 8 bytes). */
  tag: string;
  /** SHA-256 of the upload so far, continued over these bytes; undefined when none is kept. */
  hasher: IHasher | undefined;
  checksum: Checksum | undefined;
  /** Bytes left until the upload is complete; undefined while its length is deferred. */
  remaining: number | undefined;
  /** Fires when the request lost its lock. */
  lost: AbortSignal;
  /**
   * Records blocks staged so far (a checkpoint, at most every CHECKPOINT_MS; never with a checksum,
   * which must vouch for the whole chunk first). Later checkpoints and the end count from there.
   */
  checkpoint(staged: StagedBlocks): Promise<void>;
}

export interface ReceivedChunk {
  /** Staged and not yet recorded: the caller records them when the request ends. */
  pending: StagedBlocks;
  /**
   * The block holding the upload's last byte, staged after the pending ones (with the hash state
   * after it): the caller records it with the upload's completion.
   */
  final: { bytes: number; hash: string | undefined } | undefined;
  /** Why the chunk stopped early (the caller left, a storage failure, the lock lost), if it did. */
  failure: unknown;
}

/**
 * Streams one PATCH body into staged blocks of the data blob. What fully arrived is kept even when
 * the connection drops (the spec's SHOULD): the block that was filling then is staged short. With
 * Upload-Checksum, nothing is kept until the whole chunk arrived and matched; a mismatch is a 460 and
 * the chunk is discarded (its blocks were staged under a tag no record names, so no commit ever
 * includes them).
 */
export async function receiveChunk(source: Readable, target: ChunkTarget): Promise<ReceivedChunk> {
  const { hasher, checksum } = target;
  const check: Hash | undefined = checksum ? createHash(checksum.algorithm) : undefined;
  let buffers = [Buffer.allocUnsafe(BLOCK_BYTES), Buffer.allocUnsafe(BLOCK_BYTES)];
  let fill = 0;
  let received = 0;
  let sequence = 0;
  // Staged since the last checkpoint.
  const pending: StagedBlocks = { blocks: 0, bytes: 0, hash: undefined };
  let lastCheckpoint = performance.now();
  let final: ReceivedChunk['final'];
  let inFlight: Promise<void> = Promise.resolve();

  const stage = async (bytes: Buffer, isFinal: boolean): Promise<void> => {
    if (target.lost.aborted) throw target.lost.reason;
    const id = blockId(target.tag, sequence++);
    const staged = target.data.stageBlock(id, bytes, bytes.length, { abortSignal: target.lost });
    // Hashed while the block travels: if staging fails, the request ends and this hasher with it.
    hasher?.update(bytes);
    try {
      await staged;
    } catch (err) {
      throw target.lost.aborted ? target.lost.reason : storageError(err, 'Staging a block');
    }
    const hash = hasher ? Buffer.from(hasher.save()).toString('base64') : undefined;
    if (isFinal) {
      final = { bytes: bytes.length, hash };
      return;
    }
    pending.blocks += 1;
    pending.bytes += bytes.length;
    pending.hash = hash;
    if (!check && performance.now() - lastCheckpoint >= CHECKPOINT_MS) {
      await target.checkpoint({ ...pending });
      Object.assign(pending, { blocks: 0, bytes: 0, hash: undefined });
      lastCheckpoint = performance.now();
    }
  };
  // One block staged while the next fills: stages go in order, and a buffer is refilled only once
  // the stage that read it is done.
  const flush = async (isFinal: boolean): Promise<void> => {
    const bytes = buffers[0]!.subarray(0, fill);
    await inFlight;
    inFlight = stage(bytes, isFinal);
    // Seen where it is awaited; until then it must not count as unhandled.
    inFlight.catch(() => {});
    buffers = [buffers[1]!, buffers[0]!];
    fill = 0;
    if (isFinal) await inFlight;
  };

  const atEnd = () => target.remaining !== undefined && received === target.remaining;
  let failure: unknown;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      check?.update(chunk);
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(chunk.length - offset, BLOCK_BYTES - fill);
        chunk.copy(buffers[0]!, fill, offset, offset + take);
        fill += take;
        offset += take;
        received += take;
        // A full block is staged at once, unless it holds the last byte: that one waits for the end.
        if (fill === BLOCK_BYTES && !atEnd()) await flush(false);
      }
    }
    if (fill > 0) await flush(atEnd());
    await inFlight;
    if (check && checksum && !check.digest().equals(checksum.digest)) {
      Object.assign(pending, { blocks: 0, bytes: 0, hash: undefined });
      final = undefined;
      throw new BridgeError(
        'ChecksumMismatch',
        'The chunk does not match its Upload-Checksum; it was discarded.',
      );
    }
    return { pending, final, failure: undefined };
  } catch (err) {
    failure = err;
  }
  // The caller left (or crawled): keep what fully arrived, as a short block, unless a checksum must
  // vouch for it or it would complete the upload (which only a whole request may do).
  try {
    await inFlight;
    if (!check && fill > 0 && !atEnd() && callerLeftOrSlow(failure)) {
      await flush(false);
      await inFlight;
    }
  } catch {
    // The first failure is the one to tell.
  }
  if (check) Object.assign(pending, { blocks: 0, bytes: 0, hash: undefined });
  return { pending, final: undefined, failure };
}

/** The caller's own failures after which what arrived is still good: it left, or sent too slowly. */
function callerLeftOrSlow(err: unknown): boolean {
  return err instanceof BridgeError && (err.code === 'RequestAborted' || err.code === 'RequestTimeout');
}
