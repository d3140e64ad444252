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
import { recordedBlocks, type CompletedAttachment, type UploadInfo } from './state.js';
import { isRestError, storageError, UPLOAD_ID_METADATA, type UploadStore } from './storage.js';

export interface Completion {
  /** The upload, every block recorded (the final one too), in `completing`. */
  info: UploadInfo;
  etag: string;
  lock: UploadLock;
  /** SHA-256 continued over every byte (blob mode), when its state could be kept across requests. */
  hasher: IHasher | undefined;
}

/**
 * The staged bytes are gone or not what was recorded (their blocks expired, the blob was removed):
 * no attempt can complete the upload; it must start over.
 */
export class StagedBytesLost extends BridgeError {
  constructor(detail: string) {
    super('Gone', `The staged bytes of this upload are gone (${detail}); upload the file again.`);
  }
}

/**
 * Turns a fully received upload into its attachment, all or nothing, the way a multipart upload
 * would: commit the staged blocks, check the size, take the SHA-256, then create the attachment
 * through the AttachmentWriter, so ownership marks, settling of unknown outcomes, the take-over of
 * what an earlier attempt stored, and the durable clean-up queue apply unchanged.
 *
 * - Blob mode: the committed blob already sits where the attachment points (no copy); the SHA-256 is
 *   the one kept while the bytes arrived (else the blob is read back once); a metadata attachment is
 *   created, then the blob is marked with the attachment's upload id, which is what lets a later
 *   delete of the attachment remove the blob (the blob store's rule).
 * - Managed media: the committed blob streams into a managed attachment (whole and replayable when
 *   small), hashed on the way (Node's own SHA-256), and the staged blob is removed.
 *
 * Safe to run again after an attempt that died anywhere: the commit is repeated over the upload's own
 * blob, and a create that meets what an earlier attempt stored takes it over (the writer's rule).
 * Any failure undoes what this attempt created and throws; the state is then as it was. Only once
 * the state records the attachment is the upload complete.
 */
export async function complete(
  { info, etag, lock, hasher }: Completion,
  context: RequestContext,
  store: UploadStore,
): Promise<{ completed: CompletedAttachment; etag: string }> {
  const { target } = info;
  const size = info.length!;
  const data = await store.data(info);
  const committed = await commit(data, recordedBlocks(info.segments), info);
  if (committed.size !== size) {
    throw new StagedBytesLost(`the staged blob holds ${committed.size} bytes, not ${size}`);
  }
  const subject = `Attachment "${target.id}"`;
  const writer = new AttachmentWriter(context, target.address);
  let attachment: AttachmentResource;
  let headers: Record<string, string>;
  const upsert = target.upsert === true;
  // Blob mode: set once this attempt marked the blob as its attachment's, to be put back on failure
  // unless an upsert replaced the attachment in place (no rollback undoes that: the blob stays its).
  let marked = false;
  let replaced = false;
  try {
    if (info.staging === 'media') {
      let blobEtag = committed.etag;
      if (upsert && committed.mark !== info.id) {
        // An earlier attempt's attachment marked the blob: the upsert about to replace that attachment
        // must not take the blob with it (a replaced attachment's blob goes when it carries its mark).
        blobEtag = await markBlob(data, committed.etag, info.id);
      }
      const sha256 = hasher ? hasher.digest('hex') : await hashOf(data);
      const written = await writer.createMetadata(
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
        { upsert },
      );
      replaced = written.status === 200;
      // What an earlier attempt of this completion stored becomes this one's (marked with its id).
      const [reply] = await writer.commit();
      attachment = JSON.parse(reply!.body) as AttachmentResource;
      headers = passedBackHeaders(reply!);
      await markBlob(data, blobEtag, String(attachment[UPLOAD_ID_PROPERTY]));
      marked = true;
    } else {
      const upload = await managedUpload(data, info, context.settings.upstream.replayBufferBytes);
      try {
        await writer.createMedia(upload, target.partitionKey, subject, upsert);
        const [reply] = await writer.commit();
        const measured = upload.measurement() ?? (await upload.finish());
        if (measured?.size !== size) throw new StagedBytesLost('the staged blob changed while it was read');
        attachment = { ...(JSON.parse(reply!.body) as AttachmentResource), ...measured };
        headers = passedBackHeaders(reply!);
      } finally {
        upload.close();
      }
    }
    const completed: CompletedAttachment = { attachment, headers };
    const newEtag = await store.write(
      {
        ...info,
        offset: size,
        completing: undefined,
        failed: undefined,
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
    // The blob is marked again as it was (the upload's, or an earlier attempt's attachment's, which the
    // rollback puts back), for the next attempt or the timer.
    if (marked && !replaced) await markBlob(data, undefined, committed.mark).catch(() => undefined);
    throw withPendingCleanup(err, pending);
  }
}

/**
 * Commits the blocks: the blob is new (If-None-Match) unless an earlier attempt of this upload
 * committed it already. Its name is this upload's alone (blob mode: it carries the upload id; managed
 * media: `data/{upload id}`), so a blob found there is an earlier attempt's: committed again over its
 * own version with the same blocks while it is still marked as the upload's, or, in blob mode, taken
 * as it is when an attachment of an earlier attempt marked it already (the commit held every block).
 */
async function commit(
  data: BlockBlobClient,
  blocks: string[],
  info: UploadInfo,
): Promise<{ etag: string; size: number; mark: string }> {
  const options = {
    blobHTTPHeaders: { blobContentType: info.target.contentType },
    metadata: { [UPLOAD_ID_METADATA]: info.id },
  };
  try {
    const reply = await data.commitBlockList(blocks, { ...options, conditions: { ifNoneMatch: '*' } });
    return { etag: reply.etag!, size: info.length!, mark: info.id };
  } catch (err) {
    if (isInvalidBlockList(err)) throw new StagedBytesLost('Blob Storage no longer has its blocks');
    if (!(isRestError(err) && (err.statusCode === 409 || err.statusCode === 412)))
      throw storageError(err, 'Committing the upload');
  }
  try {
    const existing = await data.getProperties();
    const mark = existing.metadata?.[UPLOAD_ID_METADATA];
    if (mark !== info.id)
      return { etag: existing.etag!, size: existing.contentLength ?? -1, mark: mark ?? info.id };
    const reply = await data.commitBlockList(blocks, { ...options, conditions: { ifMatch: existing.etag } });
    return { etag: reply.etag!, size: info.length!, mark: info.id };
  } catch (err) {
    if (isInvalidBlockList(err)) throw new StagedBytesLost('Blob Storage no longer has its blocks');
    throw storageError(err, 'Committing the upload');
  }
}

/** Blob Storage's answer to a commit naming blocks it does not have (they expired, or went with the blob). */
function isInvalidBlockList(err: unknown): boolean {
  return isRestError(err) && err.statusCode === 400 && err.code === 'InvalidBlockList';
}

/** Marks the committed blob with an upload id (only at the version committed, when given). */
async function markBlob(data: BlockBlobClient, etag: string | undefined, uploadId: string): Promise<string> {
  try {
    const reply = await data.setMetadata(
      { [UPLOAD_ID_METADATA]: uploadId },
      etag ? { conditions: { ifMatch: etag } } : {},
    );
    return reply.etag!;
  } catch (err) {
    throw storageError(err, 'Marking the blob');
  }
}

/**
 * The committed blob as a managed attachment's body, hashed on the way: whole when a throttled create
 * may send it again. `close` lets go of a download Cosmos DB did not read to the end.
 */
async function managedUpload(
  data: BlockBlobClient,
  info: UploadInfo,
  replayBufferBytes: number,
): Promise<FileUpload & { close(): void }> {
  const { target } = info;
  const common = { id: target.id, contentType: target.contentType, properties: target.properties };
  if (info.length! <= replayBufferBytes) {
    const body = await data.downloadToBuffer().catch((err: unknown) => {
      throw readFailed(err);
    });
    const measurement = { size: body.length, sha256: createHash('sha256').update(body).digest('hex') };
    return {
      ...common,
      body,
      measured: () => Promise.resolve(measurement),
      measurement: () => measurement,
      finish: () => Promise.resolve(measurement),
      close: () => {},
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
    // Cosmos DB answered before it took the file (its id is taken): the blob is read again, from the
    // start, for its size and hash (the download it was given is gone with that request).
    finish: async () => {
      if (meter.measurement) return meter.measurement;
      meter.destroy();
      return measureBlob(data);
    },
    close: () => {
      if (!meter.writableFinished) meter.destroy();
    },
  };
}

/** Reads the committed blob once to hash it (when the hash state could not be kept across requests). */
async function hashOf(data: BlockBlobClient): Promise<string> {
  return (await measureBlob(data)).sha256;
}

async function measureBlob(data: BlockBlobClient): Promise<Measurement> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of (await openBlob(data)) as AsyncIterable<Buffer>) {
    size += chunk.length;
    hash.update(chunk);
  }
  return { size, sha256: hash.digest('hex') };
}

async function openBlob(data: BlockBlobClient): Promise<Readable> {
  try {
    return (await data.download()).readableStreamBody as Readable;
  } catch (err) {
    throw readFailed(err);
  }
}

function readFailed(err: unknown): unknown {
  if (isRestError(err) && err.statusCode === 404) return new StagedBytesLost('the staged blob is missing');
  return storageError(err, 'Reading the committed upload');
}

/** Counts and hashes what passes: the attachment's size and SHA-256 are those of what Cosmos DB took. */
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
