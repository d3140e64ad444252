import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { BlockBlobClient } from '@azure/storage-blob';
import type { IHasher } from 'hash-wasm';
import { UPLOAD_ID_PROPERTY, type AttachmentResource } from '../../attachments/record.js';
import { AttachmentWriter, withPendingCleanup, type FileUpload } from '../../attachments/writer.js';
import { passedBackHeaders } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import { describeError } from '../../log.js';
import type { Measurement } from '../../multipart/measure.js';
import type { RequestContext } from '../context.js';
import type { UploadLock } from './lock.js';
import type { CompletedAttachment, UploadInfo } from './state.js';
import { isRestError, storageError, UPLOAD_ID_METADATA, type UploadStore } from './storage.js';

export interface Completion {
  info: UploadInfo;
  etag: string;
  lock: UploadLock;
  /** Every block of the upload, in order (the recorded ones and the final one). */
  blocks: string[];
  /** SHA-256 continued over every byte, when its state could be kept across requests. */
  hasher: IHasher | undefined;
}

/**
 * Turns a fully received upload into its attachment, all or nothing, the way a multipart upload
 * would: commit the staged blocks, check the size, take the SHA-256 (kept across requests, else read
 * back once), then create the attachment through the AttachmentWriter, so ownership marks, settling of
 * unknown outcomes and the durable clean-up queue apply unchanged.
 *
 * - Blob mode: the committed blob already sits where the attachment points (no copy); a metadata
 *   attachment is created, then the blob is marked with the attachment's upload id, which is what
 *   lets a later delete of the attachment remove the blob (the blob store's rule).
 * - Managed media: the committed blob streams into a managed attachment (whole and replayable when
 *   small), its SHA-256 checked against the one kept, and the staged blob is removed.
 *
 * Any failure undoes what this attempt created and leaves the upload as it was before its final block:
 * the client sends that block again and completion runs again. Only once the state records the
 * attachment is the upload complete.
 */
export async function complete(
  { info, etag, lock, blocks, hasher }: Completion,
  context: RequestContext,
  store: UploadStore,
): Promise<{ completed: CompletedAttachment; etag: string }> {
  const { target } = info;
  const data = await store.data(info);
  const committedEtag = await commit(data, blocks, info);
  const properties = await data.getProperties().catch((err: unknown) => {
    throw storageError(err, 'Reading the committed upload');
  });
  if (properties.contentLength !== info.length) {
    throw new BridgeError(
      'InternalError',
      'The staged upload does not have the length it was given; send it again.',
    );
  }
  const size = info.length!;
  const sha256 = hasher ? hasher.digest('hex') : await hashOf(data);
  const subject = `Attachment "${target.id}"`;
  const writer = new AttachmentWriter(context, target.address);
  let attachment: AttachmentResource;
  let headers: Record<string, string>;
  try {
    if (info.staging === 'media') {
      const reply = await writer.createMetadata(
        {
          ...target.properties,
          id: target.id,
          contentType: target.contentType,
          media: bareUrl(data.url),
          size,
          sha256,
        },
        target.partitionKey,
        subject,
      );
      attachment = JSON.parse(reply.body) as AttachmentResource;
      headers = passedBackHeaders(reply);
      await markBlob(data, committedEtag, String(attachment[UPLOAD_ID_PROPERTY]));
    } else {
      const upload = await managedUpload(data, info, context.settings.upstream.replayBufferBytes);
      const reply = await writer.createMedia(upload, target.partitionKey, subject);
      const measured = await upload.measured();
      if (measured.size !== size || measured.sha256 !== sha256) {
        throw new BridgeError(
          'InternalError',
          'The staged bytes changed before they were stored; send the last chunk again.',
        );
      }
      attachment = { ...(JSON.parse(reply.body) as AttachmentResource), size, sha256 };
      headers = passedBackHeaders(reply);
    }
    const completed: CompletedAttachment = { attachment, headers };
    const newEtag = await store.write(
      {
        ...info,
        offset: size,
        completed,
        expiresAt: Date.now() + context.settings.uploads.expirySeconds * 1000,
      },
      etag,
      lock.leaseId,
    );
    if (info.staging === 'uploads') {
      // The bytes are in Cosmos DB now; if this fails the timer removes them when the upload expires.
      await store
        .removeData(info)
        .catch((err: unknown) =>
          context.log.warn(
            'the staged bytes of a completed upload stay until it expires',
            describeError(err),
          ),
        );
    }
    return { completed, etag: newEtag };
  } catch (err) {
    const pending = await writer.rollBack();
    // In blob mode the blob stays this upload's, for the next attempt (or the timer).
    if (info.staging === 'media') await markBlob(data, undefined, info.id).catch(() => undefined);
    throw withPendingCleanup(err, pending);
  }
}

/**
 * Commits the blocks: the blob is new (If-None-Match) unless an earlier attempt of this upload
 * committed it already, in which case it is committed again over its own version, with the blocks
 * now sent (a block list may name blocks committed before).
 */
async function commit(data: BlockBlobClient, blocks: string[], info: UploadInfo): Promise<string> {
  const options = {
    blobHTTPHeaders: { blobContentType: info.target.contentType },
    metadata: { [UPLOAD_ID_METADATA]: info.id },
  };
  try {
    return (await data.commitBlockList(blocks, { ...options, conditions: { ifNoneMatch: '*' } })).etag!;
  } catch (err) {
    if (!(isRestError(err) && (err.statusCode === 409 || err.statusCode === 412)))
      throw storageError(err, 'Committing the upload');
  }
  try {
    const existing = await data.getProperties();
    if (existing.metadata?.[UPLOAD_ID_METADATA] !== info.id) {
      throw new BridgeError('Conflict', 'The blob this upload would become exists and is not this upload’s.');
    }
    return (await data.commitBlockList(blocks, { ...options, conditions: { ifMatch: existing.etag } })).etag!;
  } catch (err) {
    throw storageError(err, 'Committing the upload');
  }
}

/** Marks the committed blob with an upload id (only at the version committed, when given). */
async function markBlob(data: BlockBlobClient, etag: string | undefined, uploadId: string): Promise<void> {
  try {
    await data.setMetadata({ [UPLOAD_ID_METADATA]: uploadId }, etag ? { conditions: { ifMatch: etag } } : {});
  } catch (err) {
    throw storageError(err, 'Marking the blob');
  }
}

/** The committed blob as a managed attachment's body: whole when a throttled create may send it again. */
async function managedUpload(
  data: BlockBlobClient,
  info: UploadInfo,
  replayBufferBytes: number,
): Promise<FileUpload & { measured(): Promise<Measurement> }> {
  const { target } = info;
  const common = { id: target.id, contentType: target.contentType, properties: target.properties };
  if (info.length! <= replayBufferBytes) {
    const body = await data.downloadToBuffer().catch((err: unknown) => {
      throw storageError(err, 'Reading the committed upload');
    });
    const measurement = { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    return {
      ...common,
      body,
      measured: () => Promise.resolve(measurement),
      measurement: () => measurement,
      finish: () => Promise.resolve(measurement),
    };
  }
  const source = await openBlob(data);
  const meter = new HashingStream();
  pipeline(source, meter, () => {});
  return {
    ...common,
    body: meter,
    measured: () => meter.measured(),
    measurement: () => meter.measurement,
    // What Cosmos DB did not take (it answered early) is read only for its size and hash.
    finish: () => {
      if (meter.measurement || meter.destroyed) return Promise.resolve(meter.measurement);
      meter.resume();
      return meter.measured().catch(() => undefined);
    },
  };
}

/** Reads the committed blob once to hash it (when the hash state could not be kept across requests). */
async function hashOf(data: BlockBlobClient): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of (await openBlob(data)) as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

async function openBlob(data: BlockBlobClient): Promise<Readable> {
  try {
    return (await data.download()).readableStreamBody as Readable;
  } catch (err) {
    throw storageError(err, 'Reading the committed upload');
  }
}

/** Counts and hashes what passes, for the check against the SHA-256 kept while it arrived. */
class HashingStream extends Transform {
  readonly #hash = createHash('sha256');
  #size = 0;
  #measurement: Measurement | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#size += chunk.length;
    this.#hash.update(chunk);
    callback(null, chunk);
  }

  get measurement(): Measurement | undefined {
    if (!this.writableFinished) return undefined;
    this.#measurement ??= { size: this.#size, sha256: this.#hash.digest('hex') };
    return this.#measurement;
  }

  async measured(): Promise<Measurement> {
    await finished(this);
    return this.measurement!;
  }
}

/** The blob's address for the attachment's `media`: never with a SAS. */
function bareUrl(url: string): string {
  const bare = new URL(url);
  bare.search = '';
  return bare.href;
}
