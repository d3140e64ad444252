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
}

/** The attachment an upload created, as the caller is told about it. */
export interface CompletedAttachment {
  /** The attachment resource, with `size` and `sha256` as a multipart upload reports them. */
  attachment: Record<string, unknown>;
  /** Cosmos DB's headers for it (etag, request charge, session token). */
  headers: Record<string, string>;
}

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
  /** hash-wasm's saved SHA-256 state after `offset` bytes (base64); undefined when it could not be kept. */
  hash: string | undefined;
  completed?: CompletedAttachment | undefined;
}

/** Block ids: 8 bytes of tag, 4 of sequence number; every id of a blob must have the same length. */
export function blockId(tag: string, sequence: number): string {
  const raw = Buffer.alloc(12);
  Buffer.from(tag, 'hex').copy(raw, 0, 0, 8);
  raw.writeUInt32BE(sequence, 8);
  return raw.toString('base64');
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
