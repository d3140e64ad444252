/** Where the page's requests go and what they carry: the document, its partition key and a credential. */
export interface Target {
  /** The API's base path, e.g. `/api` (the page is served at `${base}/ui`). */
  base: string;
  db: string;
  coll: string;
  doc: string;
  /** The partition key as JSON (`["welcome"]`), as the bridge's header takes it. */
  partitionKey: string;
  credential: Credential;
}

/** A function key goes in `x-functions-key`; a token in `Authorization: Bearer`. */
export interface Credential {
  kind: 'key' | 'bearer';
  value: string;
}

/** An answer the bridge refused, in words: its `{code, message}` when it sent one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** The partition key header's value: JSON as typed, or a plain value made into `["value"]`. */
export function partitionKeyJson(typed: string, doc: string): string {
  const text = typed.trim();
  if (text === '') return JSON.stringify([doc]);
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return JSON.stringify(parsed);
  } catch {
    // not JSON: a plain value
  }
  return JSON.stringify([text]);
}

/** Headers every request carries: the credential and the partition key. */
export function headersFor(target: Target): Record<string, string> {
  const headers: Record<string, string> = { 'x-ms-documentdb-partitionkey': target.partitionKey };
  if (target.credential.value !== '') {
    if (target.credential.kind === 'key') headers['x-functions-key'] = target.credential.value;
    else headers.authorization = `Bearer ${target.credential.value}`;
  }
  return headers;
}

const enc = encodeURIComponent;

export function attachmentsUrl(target: Target): string {
  return `${target.base}/dbs/${enc(target.db)}/colls/${enc(target.coll)}/docs/${enc(target.doc)}/attachments`;
}

export function mediaUrl(target: Target, id: string): string {
  return `${attachmentsUrl(target)}/${enc(id)}/media`;
}

/** What the bridge said, in words, from an error answer's body (`{"code","message"}`) and status. */
export function describeFailure(status: number, body: string): ApiError {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; message?: unknown };
    if (typeof parsed.message === 'string' && parsed.message !== '') {
      const code = typeof parsed.code === 'string' ? parsed.code : undefined;
      return new ApiError(parsed.message, status, code);
    }
  } catch {
    // not the bridge's JSON (a proxy's page, say)
  }
  if (status === 0) return new ApiError('The network connection failed.', 0, undefined);
  if (status === 401) return new ApiError('The key or token was refused (401).', status, undefined);
  return new ApiError(`The request failed with status ${status}.`, status, undefined);
}

async function request(target: Target, url: string): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, { headers: headersFor(target), cache: 'no-store' });
  } catch {
    throw new ApiError('The network connection failed.', 0, undefined);
  }
  if (!response.ok) throw describeFailure(response.status, await response.text());
  return response;
}

/** One attachment as the list gives it (Cosmos DB's resource, plus what the bridge stored). */
export interface Attachment {
  id: string;
  contentType?: string;
  media?: string;
  size?: number;
  originalName?: string;
}

/** Every attachment of the document, following the continuation from page to page. */
export async function listAttachments(target: Target): Promise<Attachment[]> {
  const all: Attachment[] = [];
  let continuation: string | null = null;
  do {
    const query: string = continuation === null ? '' : `?continuation=${enc(continuation)}`;
    const response = await request(target, `${attachmentsUrl(target)}${query}`);
    const body = (await response.json()) as { Attachments?: Attachment[] };
    all.push(...(body.Attachments ?? []));
    continuation = response.headers.get('x-ms-continuation');
  } while (continuation);
  return all;
}

/** An attachment's bytes, with the caller's credentials (an `<a href>` could not send them). */
export async function fetchMedia(target: Target, id: string): Promise<Blob> {
  const response = await request(target, mediaUrl(target, id));
  return response.blob();
}
