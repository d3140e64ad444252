import { expect } from 'vitest';
import { COLL, DB, FUNCTION_KEY } from './stack.js';

/** Plain tus calls for tests that need an upload done, not a client's behaviour. */
export const TUS_HEADERS = { 'x-functions-key': FUNCTION_KEY, 'tus-resumable': '1.0.0' };

/** The tus headers every call carries, with `extra`. */
export const tusHeaders = (extra: Record<string, string> = {}) => ({ ...TUS_HEADERS, ...extra });

/** A metadata value as Upload-Metadata carries it. */
export const b64 = (text: string) => Buffer.from(text).toString('base64');

/** A PATCH of `body` at `offset` (a stream is sent as it comes, half duplex). */
export function tusPatch(
  url: string,
  offset: number,
  body: Uint8Array | ReadableStream<Uint8Array>,
  extra: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: 'PATCH',
    headers: tusHeaders({
      'content-type': 'application/offset+octet-stream',
      'upload-offset': String(offset),
      ...extra,
    }),
    body,
    duplex: 'half',
  });
}

/**
 * Uploads `file` in one creation request and one PATCH with `metadata` besides the file name (values
 * as text; base64 here) and `headers` on the creation; returns the final PATCH's answer and the
 * attachment it reports (X-Attachment).
 */
export async function tusPut(
  base: string,
  doc: string,
  filename: string,
  file: Buffer,
  metadata: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<{ response: Response; attachment: Record<string, unknown>; url: string }> {
  const pairs = Object.entries({ filename, filetype: 'video/mp4', ...metadata })
    .map(([key, value]) => `${key} ${b64(value)}`)
    .join(',');
  const created = await fetch(`${base}/api/dbs/${DB}/colls/${COLL}/docs/${doc}/attachments/uploads`, {
    method: 'POST',
    headers: {
      ...TUS_HEADERS,
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
      'upload-length': String(file.length),
      'upload-metadata': pairs,
      ...headers,
    },
  });
  expect(created.status, await created.clone().text()).toBe(201);
  const url = new URL(created.headers.get('location')!, base).href;
  const response = await tusPatch(url, 0, file);
  expect(response.status, await response.clone().text()).toBe(204);
  const reported = response.headers.get('x-attachment');
  expect(reported).not.toBeNull();
  const attachment = JSON.parse(Buffer.from(reported!, 'base64').toString('utf8')) as Record<string, unknown>;
  return { response, attachment, url };
}
