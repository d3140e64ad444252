import type { DocumentAddress } from '../../cosmos/client.js';
import type { PartitionKey } from '../../cosmos/partition-key.js';

/**
 * One PATCH's staged blocks: ids `tag + sequence number` (see blockId), `blocks` of them holding
 * `bytes`. A PATCH writes under a tag of its own, so blocks staged by a request that lost its lock
 * never carry a recorded id and are never committed.
 */
export interface Segment {
  tag: string;
  blocks: number;
  bytes: number;
}

/** What an upload becomes: the attachment it will create, fixed at creation. */
export interface UploadTarget {
  address: DocumentAddress;
  partitionKey?: PartitionKey | undefined;
  /** The attachment id (the file name, or a unique id made from it). */
  id: string;
  contentType: string;
  /** Properties recorded on the attachment besides id, contentType and media (e.g. `originalName`). */
  properties?: Record<string, unknown> | undefined;
  /** Create-or-replace (the `upsert` id choice): an attachment of that id is replaced at completion. */
  upsert?: boolean | undefined;
}

/** The attachment an upload created, as the caller is told about it. */
export interface CompletedAttachment {
  /** The attachment resource, with `size` and `sha256` as a multipart upload reports them. */
  attachment: Record<string, unknown>;
  /** Cosmos DB's headers for it (etag, request charge, session token). */
  headers: Record<string, string>;
}

/**
 * An upload whose bytes are all staged and recorded, its attachment being made. A durable task was
 * queued before the state said so, so whichever instance is alive finishes it (see finish.ts).
 */
export interface Completing {
  /** The queued task's attempt: a task queued for another attempt finds nothing to do. */
  attempt: string;
  since: number;
  /**
   * The final block's size, and the hash state before it: a completion that fails for good takes that
   * block back, leaving the upload one block short, to be completed by sending it again.
   */
  finalBytes: number;
  hashBefore: string | undefined;
}

/** Why the last completion failed for good, as the caller was (or will be) told. */
export interface Failure {
  status: number;
  code: string;
  message: string;
  at: number;
  /**
   * True: the upload is one block short and completes when that block is sent again. False: its
   * staged bytes are gone (the upload must start over); only this record is left, until it expires.
   */
  completable: boolean;
}

/** Where an upload stands, as GET reports it. */
export type UploadPhase = 'uploading' | 'completing' | 'complete' | 'failed';

/**
 * Everything about one upload, in its info blob (JSON), the only state there is: any instance can
 * continue any upload. Written only under the upload's lease and at the version read (If-Match).
 */
export interface UploadInfo {
  v: 1;
  id: string;
  /** HMAC of the creator's identity (see identity.ts). */
  owner: string;
  createdAt: number;
  /** After this, the upload is gone (the timer removes it); moved on by every write. */
  expiresAt: number;
  /** Undefined while deferred (Upload-Defer-Length). */
  length: number | undefined;
  /** Upload-Metadata as the client sent it, echoed on HEAD. */
  metadata: string | undefined;
  target: UploadTarget;
  /**
   * Where the bytes are staged: `uploads` (the uploads container, managed media: copied into Cosmos DB
   * at completion) or `media` (blob mode: the media container, at the name the attachment will point at).
   */
  staging: 'uploads' | 'media';
  /** The data blob's name in that container. */
  blob: string;
  segments: Segment[];
  /** Bytes recorded: the sum of the segments. */
  offset: number;
  /**
   * hash-wasm's saved SHA-256 state after `offset` bytes (base64), kept in blob mode only; undefined
   * with managed media (the copy into Cosmos DB hashes the file) or when it could not be kept.
   */
  hash: string | undefined;
  completing?: Completing | undefined;
  completed?: CompletedAttachment | undefined;
  failed?: Failure | undefined;
}

export function phaseOf(info: UploadInfo): UploadPhase {
  if (info.completed) return 'complete';
  if (info.completing) return 'completing';
  if (info.failed && !info.failed.completable) return 'failed';
  return 'uploading';
}

/** Block ids: 8 bytes of tag, 4 of sequence number; every id of a blob must have the same length. */
export function blockId(tag: string, sequence: number): string {
  const raw = Buffer.alloc(12);
  Buffer.from(tag, 'hex').copy(raw, 0, 0, 8);
  raw.writeUInt32BE(sequence, 8);
  return raw.toString('base64');
}

/** The segments after recording `blocks` more blocks of `bytes` under `tag` (the request's own). */
export function withBlocks(
  segments: readonly Segment[],
  tag: string,
  blocks: number,
  bytes: number,
): Segment[] {
  const next = segments.map((segment) => ({ ...segment }));
  if (blocks === 0) return next;
  if (next.at(-1)?.tag !== tag) next.push({ tag, blocks: 0, bytes: 0 });
  const last = next.at(-1)!;
  last.blocks += blocks;
  last.bytes += bytes;
  return next;
}

/** The segments without their last block (of `bytes` bytes): a final block taken back. */
export function withoutLastBlock(segments: readonly Segment[], bytes: number): Segment[] {
  const next = segments.map((segment) => ({ ...segment }));
  const last = next.at(-1);
  if (!last || bytes === 0) return next;
  last.blocks -= 1;
  last.bytes -= bytes;
  if (last.blocks === 0) next.pop();
  return next;
}

/** The recorded blocks, in order: what a commit lists. */
export function recordedBlocks(segments: readonly Segment[]): string[] {
  return segments.flatMap((segment) =>
    Array.from({ length: segment.blocks }, (_, i) => blockId(segment.tag, i)),
  );
}

/** An upload id as the bridge makes them (128 random bits, base64url): anything else cannot exist. */
export function isUploadId(value: string): boolean {
  return /^[A-Za-z0-9_-]{22}$/.test(value);
}

export function isExpired(info: UploadInfo, now = Date.now()): boolean {
  return info.expiresAt <= now;
}

/** Reads an info blob's JSON, refusing anything that is not one (a corrupt or foreign blob). */
export function parseInfo(text: string): UploadInfo | undefined {
  try {
    const info = JSON.parse(text) as UploadInfo;
    return info && info.v === 1 && typeof info.id === 'string' && Array.isArray(info.segments)
      ? info
      : undefined;
  } catch {
    return undefined;
  }
}
