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

export interface ChunkTarget {
  data: BlockBlobClient;
  /** This request's block id tag (hex, 8 bytes). */
  tag: string;
  /** SHA-256 of the upload so far, continued over these bytes; undefined when it could not be kept. */
  hasher: IHasher | undefined;
  checksum: Checksum | undefined;
  /** Bytes left until the upload is complete; undefined while its length is deferred. */
  remaining: number | undefined;
  /** Fires when the request lost its lock. */
  lost: AbortSignal;
  /**
   * Records `blocks` blocks of `bytes` bytes more under this request's tag, and the hash state after
   * them: after each block, or (with a checksum) once the whole chunk checked out.
   */
  record(blocks: number, bytes: number, hashState: string | undefined): Promise<void>;
}

export interface ReceivedChunk {
  /** Bytes recorded by this request. */
  recorded: number;
  /**
   * The block holding the upload's last byte: staged, not recorded. It counts once the attachment is
   * made, so that a failed completion leaves the upload one block short and the client sends it again.
   */
  final: { blocks: number; bytes: number } | undefined;
  /** Why the chunk stopped early (the caller left, a storage failure, the lock lost), if it did. */
  failure: unknown;
}

/**
 * Streams one PATCH body into staged blocks of the data blob, recording each fully staged block in the
 * upload's state, so that HEAD reports what arrived even when the connection drops (the spec's SHOULD):
 * the block that was filling when it dropped is staged short and recorded too. With Upload-Checksum,
 * nothing is recorded until the whole chunk arrived and matched; a mismatch is a 460 and the chunk is
 * discarded (its blocks were staged under a tag no record names, so no commit ever includes them).
 */
export async function receiveChunk(source: Readable, target: ChunkTarget): Promise<ReceivedChunk> {
  const { hasher, checksum } = target;
  const check: Hash | undefined = checksum ? createHash(checksum.algorithm) : undefined;
  let buffers = [Buffer.allocUnsafe(BLOCK_BYTES), Buffer.allocUnsafe(BLOCK_BYTES)];
  let fill = 0;
  let received = 0;
  let sequence = 0;
  let recordedBlocks = 0;
  let recorded = 0;
  // With a checksum, what is recorded once the chunk checked out: every block but a final one.
  let unrecordedBlocks = 0;
  let unrecordedBytes = 0;
  let savedState: string | undefined;
  let final: ReceivedChunk['final'];
  let pending: Promise<void> = Promise.resolve();
  let failure: unknown;

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
    if (isFinal) {
      final = { blocks: recordedBlocks + unrecordedBlocks + 1, bytes: bytes.length };
      return;
    }
    const state = hasher ? Buffer.from(hasher.save()).toString('base64') : undefined;
    if (check) {
      unrecordedBlocks += 1;
      unrecordedBytes += bytes.length;
      savedState = state;
      return;
    }
    recordedBlocks += 1;
    recorded += bytes.length;
    await target.record(1, bytes.length, state);
  };
  // One block staged while the next fills: stages go in order, and a buffer is refilled only once
  // the stage that read it is done.
  const flush = async (isFinal: boolean): Promise<void> => {
    const bytes = buffers[0]!.subarray(0, fill);
    await pending;
    pending = stage(bytes, isFinal);
    // Seen where it is awaited; until then it must not count as unhandled.
    pending.catch(() => {});
    buffers = [buffers[1]!, buffers[0]!];
    fill = 0;
    if (isFinal) await pending;
  };

  const atEnd = () => target.remaining !== undefined && received === target.remaining;
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
    await pending;
    if (check && checksum) {
      if (!check.digest().equals(checksum.digest)) {
        throw new BridgeError(
          'ChecksumMismatch',
          'The chunk does not match its Upload-Checksum; it was discarded.',
        );
      }
      if (unrecordedBlocks > 0) await target.record(unrecordedBlocks, unrecordedBytes, savedState);
      recorded += unrecordedBytes;
    }
    return { recorded, final, failure: undefined };
  } catch (err) {
    failure = err;
  }
  // The caller left (or crawled): keep what fully arrived, as a short block, unless a checksum must
  // vouch for it or it would complete the upload (which only a whole request may do).
  try {
    await pending;
    if (!check && fill > 0 && !atEnd() && callerLeftOrSlow(failure)) {
      await flush(false);
      await pending;
    }
  } catch {
    // The first failure is the one to tell.
  }
  return { recorded, final: undefined, failure };
}

/** The caller's own failures after which what arrived is still good: it left, or sent too slowly. */
function callerLeftOrSlow(err: unknown): boolean {
  return err instanceof BridgeError && (err.code === 'RequestAborted' || err.code === 'RequestTimeout');
}
