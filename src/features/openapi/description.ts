import { ERRORS, type ErrorCode } from '../../http/errors.js';
import { PASSED_BACK_HEADERS } from '../../http/cosmos-replies.js';
import { CHECKSUM_ALGORITHMS, CHUNK_TYPE, EXTENSIONS, TUS_VERSION } from '../uploads/protocol.js';

/**
 * The OpenAPI 3.1 description of every route in src/routes.ts: its parameters, headers, answers and
 * the error codes each can give (src/http/errors.ts). Built as an object here, so it ships in the
 * package with the app, and reuses the code's own tables (error statuses, tus constants, headers
 * passed back from Cosmos DB). The suite lints it with Redocly and checks every answer it receives
 * against it (test/openapi*.test.ts, docs/openapi.md).
 */
export type OpenApiDocument = Record<string, unknown> & { paths: Record<string, PathItem> };
type Json = Record<string, unknown>;
type PathItem = Record<string, Json | Json[]>;

/**
 * Cosmos DB's own errors the bridge passes on with their status (`UpstreamStatusError`), by status:
 * the service's code, or `Http<status>` when its body named none. Its other statuses are translated
 * (401/403 to 502 `UpstreamAuthFailed`, 408 to 504, 429/449/503 past the retry budget to 503).
 */
export const COSMOS_CODES: Readonly<Record<number, string>> = {
  400: 'BadRequest',
  404: 'NotFound',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'RequestEntityTooLarge',
  500: 'InternalServerError',
};
const COSMOS_STATUSES = Object.keys(COSMOS_CODES).map(Number);

/**
 * Marks an answer that may come with no body although it documents content: the Functions host's own
 * refusals (a missing function key, a failed forward), and a HEAD made through the method override.
 */
const HOST_EMPTY = 'x-may-be-empty';

const ref = (name: string): Json => ({ $ref: `#/components/${name}` });
const schemaRef = (name: string): Json => ref(`schemas/${name}`);

/** Errors every route that reaches Cosmos DB or Blob Storage can give (upstream and configuration). */
const UPSTREAM: ErrorCode[] = [
  'InternalError',
  'ConfigurationError',
  'UpstreamUnreachable',
  'UpstreamBadResponse',
  'UpstreamAuthFailed',
  'UpstreamUnavailable',
  'UpstreamTimeout',
];
/** Errors of every `caller` route: who calls, where, with which partition key. */
const CALLER: ErrorCode[] = [
  'Unauthorized',
  'AuthUnavailable',
  'Forbidden',
  'InvalidId',
  'InvalidPartitionKey',
  'InvalidHeader',
  'NotFound',
  ...UPSTREAM,
];
/** Errors of a route that reads a request body. */
const BODY: ErrorCode[] = ['BadRequest', 'RequestAborted', 'RequestTimeout', 'PayloadTooLarge'];
/** Errors of every tus request (Tus-Resumable, the upload's own state). */
const TUS: ErrorCode[] = [...CALLER, 'BadRequest', 'PreconditionFailed', 'Conflict'];
const TUS_WRITE: ErrorCode[] = [
  ...TUS,
  ...BODY,
  'UnsupportedMediaType',
  'InvalidContentType',
  'MissingFilename',
  'Locked',
  'ChecksumMismatch',
];

interface Answer {
  description: string;
  headers?: Record<string, Json>;
  content?: Json;
  [HOST_EMPTY]?: boolean;
}

/**
 * The error answers an operation can give: one per status, its `code` limited to the codes listed
 * (with Cosmos DB's own codes where its answers are passed through).
 */
function errorAnswers(
  codes: readonly ErrorCode[],
  options: { cosmos?: boolean; headers?: Record<string, Json>; head?: boolean } = {},
): Record<string, Answer> {
  const byStatus = new Map<number, Set<string>>();
  const add = (status: number, code: string) => {
    if (!byStatus.has(status)) byStatus.set(status, new Set());
    byStatus.get(status)!.add(code);
  };
  for (const code of codes) add(ERRORS[code], code);
  const cosmosStatuses = new Set<number>(options.cosmos ? COSMOS_STATUSES : []);
  const answers: Record<string, Answer> = {};
  for (const status of [...new Set([...byStatus.keys(), ...cosmosStatuses])].sort()) {
    const own = [...(byStatus.get(status) ?? [])].sort();
    const code: Json = cosmosStatuses.has(status)
      ? {
          anyOf: [
            { enum: [...new Set([...own, COSMOS_CODES[status]!])] },
            { type: 'string', pattern: `^Http${status}$` },
          ],
        }
      : { enum: own };
    const answer: Answer = {
      description: errorDescription(status, own, cosmosStatuses.has(status)),
      headers: {
        'x-request-id': ref('headers/RequestId'),
        ...(status === 401 ? { 'WWW-Authenticate': ref('headers/WwwAuthenticate') } : {}),
        ...(status === 405 ? { Allow: ref('headers/Allow') } : {}),
        ...(status === 503 || status === 413 ? { 'Retry-After': ref('headers/RetryAfter') } : {}),
        ...options.headers,
      },
    };
    // HEAD answers have no body; every other error is JSON {code, message}.
    if (!options.head) {
      answer.content = {
        'application/json': {
          schema: { allOf: [schemaRef('Error'), { properties: { code } }] },
        },
      };
    }
    // The host answers a missing or wrong function key, and a forward that failed, with an empty body.
    if (status === 401 || status === 500) answer[HOST_EMPTY] = true;
    answers[String(status)] = answer;
  }
  return answers;
}

function errorDescription(status: number, codes: string[], cosmos: boolean): string {
  const parts = codes.map((code) => `\`${code}\``);
  if (cosmos) parts.push("Cosmos DB's own code (passed through with its status)");
  const text = `Error \`{code, message}\`: ${parts.join(', ')}.`;
  if (status === 401)
    return `${text} With function keys the Functions host refuses a missing or wrong key itself, with an empty body.`;
  if (status === 500)
    return `${text} The Functions host answers 500 with an empty body when forwarding fails (a body over FUNCTIONS_REQUEST_BODY_SIZE_LIMIT).`;
  return text;
}

const pathParam = (name: string, description: string): Json => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string', minLength: 1 },
});

const DOCUMENT_PARAMS = [ref('parameters/db'), ref('parameters/coll'), ref('parameters/doc')];
const COSMOS_HEADERS = Object.fromEntries(
  PASSED_BACK_HEADERS.filter((name) => name !== 'etag').map((name) => [
    name,
    ref(`headers/${cosmosHeaderName(name)}`),
  ]),
);

function cosmosHeaderName(name: string): string {
  return name
    .replace(/^x-ms-/, '')
    .split('-')
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join('');
}

const TUS_ANSWER_HEADERS = {
  'Tus-Resumable': ref('headers/TusResumableAnswer'),
  'Access-Control-Expose-Headers': ref('headers/ExposeHeaders'),
};

const CALLER_SECURITY = [{ functionKey: [] }, { functionKeyQuery: [] }, { bearerToken: [] }];

/** The description, with `serverUrl` (the route prefix the request came under, `/api` by default). */
export function openApiDescription(serverUrl = '/api'): OpenApiDocument {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cosmos attachment bridge',
      version: '0.1.0',
      summary:
        'Streams uploads into Azure Cosmos DB attachments or Blob Storage; callers never hold the account key.',
      description: [
        'Every failure a caller can cause is JSON `{"code","message"}` with the status listed per operation;',
        'the Functions host itself answers a missing or wrong function key (401) and a forward that failed',
        '(500) with an empty body (`x-may-be-empty` marks answers whose body may be empty).',
        '',
        'The path `/{path}` stands for the catch-all route `{*path}`: any path, of any number of segments,',
        'and any method that no other operation takes is answered there (404 `NotFound`, or 405',
        '`MethodNotAllowed` with `Allow` when the path is a route but the method is not).',
        '',
        'Path segments are percent-encoded once; ids follow Cosmos DB rules (at most 255 characters, no',
        '`/ \\ ? #`, no trailing space, no control characters).',
      ].join('\n'),
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      { url: serverUrl, description: 'The route prefix of host.json (`extensions.http.routePrefix`).' },
    ],
    tags: [
      { name: 'attachments', description: 'Create, list, read, replace and delete attachments.' },
      { name: 'media', description: "An attachment's bytes." },
      { name: 'resumable', description: 'Resumable uploads, tus 1.0.0.' },
      { name: 'webhooks', description: 'Signed webhook deliveries (Standard Webhooks v1).' },
      { name: 'meta', description: 'This description, the upload page and the catch-all route.' },
    ],
    security: CALLER_SECURITY,
    paths: {
      '/dbs/{db}/colls/{coll}/docs/{doc}/attachments': {
        parameters: DOCUMENT_PARAMS,
        post: createAttachments(),
        get: listAttachments(),
      },
      '/dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}': {
        parameters: [...DOCUMENT_PARAMS, ref('parameters/id')],
        get: readAttachment('get'),
        head: readAttachment('head'),
        put: replaceAttachment(),
        delete: deleteAttachment(),
      },
      '/dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}/media': {
        parameters: [...DOCUMENT_PARAMS, ref('parameters/id')],
        get: downloadMedia('get'),
        head: downloadMedia('head'),
      },
      '/dbs/{db}/colls/{coll}/docs/{doc}/attachments/uploads': {
        parameters: DOCUMENT_PARAMS,
        post: createUpload(),
        options: tusOptions('createUploadOptions'),
      },
      '/uploads/{uploadId}': {
        parameters: [ref('parameters/uploadId')],
        head: uploadOffset(),
        patch: uploadChunk('patch'),
        delete: terminateUpload('delete'),
        get: uploadStatus(),
        options: tusOptions('resumableUploadOptions'),
        post: uploadOverride(),
      },
      '/webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments': {
        parameters: DOCUMENT_PARAMS,
        post: receiveWebhook(),
      },
      '/openapi.json': {
        get: describeApi('get'),
        head: describeApi('head'),
      },
      '/ui': {
        get: uploadPage('get', 'uploadPage'),
        head: uploadPage('head', 'uploadPage'),
      },
      '/ui/{asset}': {
        parameters: [
          {
            name: 'asset',
            in: 'path',
            required: true,
            description: "A file of the page's build.",
            schema: { type: 'string' },
          },
        ],
        get: uploadPage('get', 'uploadPageAsset'),
        head: uploadPage('head', 'uploadPageAsset'),
      },
      '/{path}': fallback(),
    },
    components: components(),
  };
}

function createAttachments(): Json {
  return {
    operationId: 'createAttachments',
    tags: ['attachments'],
    summary: 'Create attachments: files (multipart), raw media (Slug) or a metadata attachment (JSON)',
    description: [
      'What it does depends on `Content-Type`:',
      "- `multipart/form-data`: every file part becomes one attachment (its id the part's file name); a",
      '  `metadata` field a metadata attachment; `partitionKey` and `idMode` fields before the files. All or',
      '  nothing: when a part fails, what the request created is deleted. Answer: `{"attachments": [...]}`.',
      '- any type with a `Slug` header: the body is the media, `Slug` the id. Answer: the resource.',
      '- `application/json` (or `+json`): a metadata attachment. Answer: the resource.',
    ].join('\n'),
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/sessionToken'),
      ref('parameters/slug'),
      ref('parameters/idMode'),
      ref('parameters/upsert'),
    ],
    requestBody: {
      required: true,
      content: {
        'multipart/form-data': {
          schema: schemaRef('AttachmentForm'),
          encoding: { metadata: { contentType: 'application/json, text/plain' } },
        },
        'application/json': { schema: schemaRef('AttachmentBody') },
        '*/*': {
          schema: { type: 'string', contentMediaType: 'application/octet-stream' },
        },
      },
    },
    responses: {
      '200': {
        description: 'Replaced (upsert asked for, and the id existed).',
        headers: createdHeaders(),
        content: { 'application/json': { schema: schemaRef('CreateResult') } },
      },
      '201': {
        description: 'Created.',
        headers: createdHeaders(),
        content: { 'application/json': { schema: schemaRef('CreateResult') } },
      },
      ...errorAnswers(
        [
          ...CALLER,
          ...BODY,
          'MalformedMultipart',
          'MissingBoundary',
          'MissingFilename',
          'NoAttachments',
          'InvalidJson',
          'InvalidContentType',
          'UnsupportedMediaType',
          'Conflict',
        ],
        { cosmos: true },
      ),
    },
  };
}

function createdHeaders(): Record<string, Json> {
  return {
    ETag: { ...ref('headers/CosmosEtag') },
    'x-request-id': ref('headers/RequestId'),
    ...COSMOS_HEADERS,
  };
}

function listAttachments(): Json {
  return {
    operationId: 'listAttachments',
    tags: ['attachments'],
    summary: "One page of a document's attachments, as Cosmos DB answers it",
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
      { ...ref('parameters/maxItemCountQuery') },
      ref('parameters/maxItemCountHeader'),
      ref('parameters/continuationQuery'),
      ref('parameters/continuationHeader'),
    ],
    responses: {
      '200': {
        description: 'One page; `x-ms-continuation` names the next when there is one.',
        headers: {
          'x-ms-continuation': ref('headers/Continuation'),
          'x-ms-item-count': ref('headers/ItemCount'),
          'Cache-Control': ref('headers/PrivateNoCache'),
          'x-request-id': ref('headers/RequestId'),
          ...COSMOS_HEADERS,
        },
        content: { 'application/json': { schema: schemaRef('AttachmentPage') } },
      },
      ...errorAnswers([...CALLER, 'BadRequest'], { cosmos: true }),
    },
  };
}

function readAttachment(method: 'get' | 'head'): Json {
  const head = method === 'head';
  return {
    operationId: head ? 'readAttachmentHead' : 'readAttachment',
    tags: ['attachments'],
    summary: head ? "An attachment's headers" : 'One attachment, as Cosmos DB answers it',
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
      ref('parameters/ifNoneMatch'),
      ref('parameters/ifModifiedSince'),
    ],
    responses: {
      '200': {
        description: 'The attachment resource; `ETag` is its `_etag`, `Last-Modified` its `_ts`.',
        headers: {
          ETag: { ...ref('headers/CosmosEtag') },
          'Last-Modified': ref('headers/LastModified'),
          'Cache-Control': ref('headers/PrivateNoCache'),
          'Content-Length': ref('headers/ContentLength'),
          'x-request-id': ref('headers/RequestId'),
          ...COSMOS_HEADERS,
        },
        ...(head ? {} : { content: { 'application/json': { schema: schemaRef('Attachment') } } }),
      },
      '304': notModified(),
      ...errorAnswers(CALLER, { cosmos: true, head }),
    },
  };
}

function notModified(): Answer {
  return {
    description: '`If-None-Match` or `If-Modified-Since` matched: the caller has the current version.',
    headers: {
      ETag: ref('headers/CosmosEtag'),
      'Last-Modified': ref('headers/LastModified'),
      'Cache-Control': ref('headers/PrivateNoCache'),
    },
  };
}

function replaceAttachment(): Json {
  return {
    operationId: 'replaceAttachment',
    tags: ['attachments'],
    summary: "Replace an attachment's properties (JSON) or its media (one file part, or a raw body)",
    description:
      'JSON: new properties with the same `id` (for media the bridge stored, `media`, `size` and `sha256` stay). ' +
      'multipart/form-data with one file part, or any other body: new media; custom properties stay. ' +
      'With `If-Match`, only while the attachment is at that version (412 otherwise).',
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
      ref('parameters/ifMatch'),
      { ...ref('parameters/slug'), description: 'When given, must name the attachment being replaced.' },
    ],
    requestBody: {
      required: true,
      content: {
        'application/json': { schema: schemaRef('AttachmentBody') },
        'multipart/form-data': { schema: schemaRef('AttachmentForm') },
        '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } },
      },
    },
    responses: {
      '200': {
        description: 'Replaced: the new resource.',
        headers: createdHeaders(),
        content: { 'application/json': { schema: schemaRef('Attachment') } },
      },
      ...errorAnswers(
        [
          ...CALLER,
          ...BODY,
          'InvalidJson',
          'InvalidContentType',
          'MalformedMultipart',
          'MissingBoundary',
          'MissingFilename',
          'NoAttachments',
          'UnsupportedMediaType',
          'PreconditionFailed',
          'Conflict',
        ],
        { cosmos: true },
      ),
    },
  };
}

function deleteAttachment(): Json {
  return {
    operationId: 'deleteAttachment',
    tags: ['attachments'],
    summary: 'Delete an attachment (and the blob its upload wrote)',
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
      ref('parameters/ifMatch'),
    ],
    responses: {
      '204': {
        description: 'Deleted.',
        headers: { 'x-request-id': ref('headers/RequestId'), ...COSMOS_HEADERS },
      },
      ...errorAnswers([...CALLER, 'PreconditionFailed'], { cosmos: true }),
    },
  };
}

function downloadMedia(method: 'get' | 'head'): Json {
  const head = method === 'head';
  const mediaHeaders = {
    'Content-Type': ref('headers/MediaType'),
    'Content-Length': ref('headers/ContentLength'),
    'Content-Disposition': ref('headers/ContentDisposition'),
    ETag: ref('headers/MediaEtag'),
    'Last-Modified': ref('headers/LastModified'),
    'Accept-Ranges': ref('headers/AcceptRanges'),
    'X-Content-Type-Options': ref('headers/NoSniff'),
    'Cache-Control': ref('headers/PrivateNoCache'),
    'x-request-id': ref('headers/RequestId'),
  };
  const bytes = head
    ? {}
    : { content: { '*/*': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } };
  return {
    operationId: head ? 'downloadMediaHead' : 'downloadMedia',
    tags: ['media'],
    summary: head
      ? "The headers of an attachment's media"
      : "An attachment's media: whole, or one byte range",
    description:
      'Media the bridge stored for this very attachment is streamed (or, with `DOWNLOAD_MODE=redirect` in blob mode, ' +
      'redirected to a short-lived read-only SAS); a metadata attachment pointing at an absolute https URL is a 302 to it, ' +
      'anything else 404 `MediaElsewhere`. Conditionals are answered from the attachment alone; one `bytes=` range is a 206, ' +
      'several ranges get the whole body.',
    parameters: [
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
      ref('parameters/range'),
      ref('parameters/ifRange'),
      ref('parameters/ifNoneMatch'),
      ref('parameters/ifModifiedSince'),
      ref('parameters/download'),
    ],
    responses: {
      '200': { description: 'The whole media.', headers: mediaHeaders, ...bytes },
      '206': {
        description: 'One byte range.',
        headers: { ...mediaHeaders, 'Content-Range': ref('headers/ContentRange') },
        ...bytes,
      },
      '302': {
        description:
          'Media elsewhere (an absolute https URL), or a read-only SAS for the blob (redirect mode).',
        headers: {
          Location: { required: true, schema: { type: 'string', format: 'uri' } },
          'Cache-Control': { schema: { const: 'private, no-store' } },
          'Referrer-Policy': { schema: { const: 'no-referrer' } },
          'x-request-id': ref('headers/RequestId'),
        },
      },
      '304': {
        description: 'The caller has the current bytes.',
        headers: {
          ETag: ref('headers/MediaEtag'),
          'Last-Modified': ref('headers/LastModified'),
          'Cache-Control': ref('headers/PrivateNoCache'),
        },
      },
      ...errorAnswers([...CALLER, 'MediaElsewhere', 'RangeNotSatisfiable'], {
        cosmos: true,
        head,
      }),
    },
  };
}

function tusParameters(...names: string[]): Json[] {
  return names.map((name) => ref(`parameters/${name}`));
}

function createUpload(): Json {
  return {
    operationId: 'createUpload',
    tags: ['resumable'],
    summary: 'Create a resumable upload (tus creation, creation-with-upload, creation-defer-length)',
    description:
      'Checked before any byte is taken: the target, the partition key, the content type (`filetype`), the size ' +
      '(`MAX_UPLOAD_BYTES`) and the id (`filename`; a taken id is 409 unless `uniqueId`). Bytes sent with the ' +
      `request (\`${CHUNK_TYPE}\`) are the first chunk.`,
    parameters: [
      ...tusParameters(
        'tusResumable',
        'uploadLength',
        'uploadDeferLength',
        'uploadMetadata',
        'uploadChecksum',
        'partitionKeyHeader',
      ),
    ],
    requestBody: {
      required: false,
      content: { [CHUNK_TYPE]: { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
    },
    responses: {
      '201': {
        description: 'Created; `Location` is where the upload continues (relative to the server).',
        headers: {
          Location: {
            required: true,
            description: '`{route prefix}/uploads/{uploadId}`.',
            schema: { type: 'string', pattern: '/uploads/[^/]+$' },
          },
          ...TUS_ANSWER_HEADERS,
          ...uploadStateHeaders(),
          'x-request-id': ref('headers/RequestId'),
        },
      },
      ...errorAnswers(TUS_WRITE, { cosmos: true, headers: TUS_ANSWER_HEADERS }),
    },
  };
}

function uploadStateHeaders(): Record<string, Json> {
  return {
    'Upload-Offset': ref('headers/UploadOffset'),
    'Upload-Length': ref('headers/UploadLength'),
    'Upload-Defer-Length': ref('headers/UploadDeferLength'),
    'Upload-Metadata': ref('headers/UploadMetadataAnswer'),
    'Upload-Expires': ref('headers/UploadExpires'),
    'Content-Location': ref('headers/AttachmentLocation'),
    'X-Attachment': ref('headers/XAttachment'),
  };
}

function tusOptions(operationId: string): Json {
  return {
    operationId,
    tags: ['resumable'],
    summary: 'What the tus server offers: version, extensions, maximum size, checksum algorithms',
    responses: {
      '204': {
        description: "The tus server's capabilities.",
        headers: {
          'Tus-Version': { required: true, schema: { const: TUS_VERSION } },
          'Tus-Extension': { required: true, schema: { const: EXTENSIONS.join(',') } },
          'Tus-Max-Size': { required: true, schema: { type: 'string', pattern: '^[0-9]+$' } },
          'Tus-Checksum-Algorithm': { required: true, schema: { const: CHECKSUM_ALGORITHMS.join(',') } },
          ...TUS_ANSWER_HEADERS,
          'x-request-id': ref('headers/RequestId'),
        },
      },
      ...errorAnswers(['Unauthorized', 'AuthUnavailable', ...UPSTREAM], { headers: TUS_ANSWER_HEADERS }),
    },
  };
}

function uploadOffset(): Json {
  return {
    operationId: 'uploadOffset',
    tags: ['resumable'],
    summary: 'How far an upload got (tus HEAD)',
    parameters: tusParameters('tusResumable'),
    responses: {
      '200': {
        description:
          'The offset, length, metadata and expiry; `Content-Location` and `X-Attachment` once complete.',
        headers: {
          ...uploadStateHeaders(),
          'Upload-Offset': { ...ref('headers/UploadOffset') },
          'Cache-Control': { required: true, schema: { const: 'no-store' } },
          ...TUS_ANSWER_HEADERS,
          'x-request-id': ref('headers/RequestId'),
        },
      },
      ...errorAnswers([...TUS, 'Gone'], { head: true, headers: TUS_ANSWER_HEADERS }),
    },
  };
}

function uploadChunk(method: 'patch' | 'post'): Json {
  return {
    operationId: method === 'patch' ? 'uploadChunk' : 'uploadChunkOverride',
    tags: ['resumable'],
    summary: 'Send bytes at `Upload-Offset` (tus PATCH)',
    description:
      'The chunk that reaches `Upload-Length` creates the attachment before the answer: 204 with `Content-Location` ' +
      '(where the read routes serve it) and `X-Attachment` (base64 JSON of the attachment, as a multipart upload reports it).',
    parameters: tusParameters('tusResumable', 'uploadOffsetRequest', 'uploadLength', 'uploadChecksum'),
    requestBody: {
      required: true,
      content: { [CHUNK_TYPE]: { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } },
    },
    responses: {
      '204': {
        description: 'Stored; `Upload-Offset` is the new offset.',
        headers: {
          ...uploadStateHeaders(),
          ...TUS_ANSWER_HEADERS,
          'x-request-id': ref('headers/RequestId'),
        },
      },
      ...errorAnswers([...TUS_WRITE, 'Gone'], { cosmos: true, headers: TUS_ANSWER_HEADERS }),
    },
  };
}

function terminateUpload(method: 'delete' | 'post'): Json {
  return {
    operationId: method === 'delete' ? 'terminateUpload' : 'terminateUploadOverride',
    tags: ['resumable'],
    summary: 'Give up an upload: its staged bytes and state go (tus termination)',
    parameters: tusParameters('tusResumable'),
    responses: {
      '204': {
        description: 'Terminated.',
        headers: { ...TUS_ANSWER_HEADERS, 'x-request-id': ref('headers/RequestId') },
      },
      ...errorAnswers([...TUS, 'Locked'], { headers: TUS_ANSWER_HEADERS }),
    },
  };
}

/** Lets an error answer be a failed upload's state too (a GET of an upload whose completion failed). */
function withUploadFailure(errors: Record<string, Answer>): Record<string, Answer> {
  for (const answer of Object.values(errors)) {
    const json = (answer.content as Record<string, { schema: Json }> | undefined)?.['application/json'];
    if (json) json.schema = { anyOf: [json.schema, schemaRef('UploadFailure')] };
  }
  return errors;
}

function uploadStatus(): Json {
  const headers = {
    'Cache-Control': { required: true, schema: { const: 'no-store' } },
    ...TUS_ANSWER_HEADERS,
    'x-request-id': ref('headers/RequestId'),
  };
  // An upload whose completion failed answers with that failure's status: the error, beside the state.
  const errors = errorAnswers([...TUS, 'Gone', 'PayloadTooLarge', 'UnsupportedMediaType'], {
    cosmos: true,
    headers: TUS_ANSWER_HEADERS,
  });
  withUploadFailure(errors);
  return {
    operationId: 'uploadStatus',
    tags: ['resumable'],
    summary: 'The upload as JSON, with its attachment once complete',
    responses: {
      '200': {
        description: 'The upload: still uploading, or complete with its attachment.',
        headers,
        content: { 'application/json': { schema: schemaRef('UploadStatus') } },
      },
      '202': {
        description:
          'Every byte arrived and the attachment is being made (a durable task finishes it): ask again.',
        headers: { ...headers, 'Retry-After': ref('headers/RetryAfter') },
        content: { 'application/json': { schema: schemaRef('UploadStatus') } },
      },
      ...errors,
    },
  };
}

function uploadOverride(): Json {
  const patch = uploadChunk('post');
  return {
    ...patch,
    operationId: 'uploadMethodOverride',
    summary: 'PATCH, DELETE, HEAD or GET for clients that cannot send them (`X-HTTP-Method-Override`)',
    description: `What the method named by \`X-HTTP-Method-Override\` does; without one, 405. ${String(patch.description)}`,
    parameters: [
      ...(patch.parameters as Json[]),
      {
        name: 'X-HTTP-Method-Override',
        in: 'header',
        required: false,
        schema: { type: 'string', enum: ['PATCH', 'DELETE', 'HEAD', 'GET', 'OPTIONS'] },
      },
    ],
    requestBody: { ...(patch.requestBody as Json), required: false },
    responses: {
      ...(patch.responses as Json),
      '200': {
        description: 'With `HEAD` (no body) or `GET` (JSON): as those.',
        [HOST_EMPTY]: true,
        headers: {
          ...uploadStateHeaders(),
          'Cache-Control': { schema: { const: 'no-store' } },
          ...TUS_ANSWER_HEADERS,
          'x-request-id': ref('headers/RequestId'),
        },
        content: { 'application/json': { schema: schemaRef('UploadStatus') } },
      },
      '202': {
        description: 'With `GET`: the attachment is being made; ask again.',
        headers: {
          'Cache-Control': { schema: { const: 'no-store' } },
          'Retry-After': ref('headers/RetryAfter'),
          ...TUS_ANSWER_HEADERS,
          'x-request-id': ref('headers/RequestId'),
        },
        content: { 'application/json': { schema: schemaRef('UploadStatus') } },
      },
      ...withUploadFailure(
        errorAnswers([...TUS_WRITE, 'Gone', 'MethodNotAllowed'], {
          cosmos: true,
          headers: TUS_ANSWER_HEADERS,
        }),
      ),
    },
  };
}

function receiveWebhook(): Json {
  return {
    operationId: 'receiveWebhook',
    tags: ['webhooks'],
    summary: 'A metadata attachment announced by a signed webhook delivery',
    description:
      'Enabled by `WEBHOOK_SECRET` (404 otherwise). Standard Webhooks v1 signature over `{id}.{timestamp}.{body}`; ' +
      'timestamps more than 5 minutes off are refused. A redelivery (same `webhook-id`) gets the first answer back ' +
      'with `idempotent-replayed: true`.',
    security: [],
    parameters: [
      {
        name: 'webhook-id',
        in: 'header',
        required: true,
        schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,256}$' },
      },
      {
        name: 'webhook-timestamp',
        in: 'header',
        required: true,
        schema: { type: 'string', pattern: '^[0-9]+$' },
      },
      {
        name: 'webhook-signature',
        in: 'header',
        required: true,
        description: '`v1,<base64 HMAC-SHA256>`, several space-separated allowed.',
        schema: { type: 'string' },
      },
      ref('parameters/partitionKeyHeader'),
      ref('parameters/partitionKeyQuery'),
      ref('parameters/sessionToken'),
    ],
    requestBody: { required: true, content: { 'application/json': { schema: schemaRef('AttachmentBody') } } },
    responses: {
      '201': {
        description:
          'Created, or (with `idempotent-replayed: true`) the attachment a first delivery created.',
        headers: {
          'idempotent-replayed': { schema: { const: 'true' } },
          ...createdHeaders(),
        },
        content: { 'application/json': { schema: schemaRef('Attachment') } },
      },
      ...errorAnswers(
        [
          ...BODY,
          'InvalidSignature',
          'InvalidJson',
          'InvalidId',
          'InvalidHeader',
          'InvalidPartitionKey',
          'Forbidden',
          'NotFound',
          'Conflict',
          ...UPSTREAM,
        ],
        { cosmos: true },
      ),
    },
  };
}

/** The upload page and its script and style (`UI_ENABLED`; when off, the JSON 404 of any unknown path). */
function uploadPage(method: 'get' | 'head', name: 'uploadPage' | 'uploadPageAsset'): Json {
  const page = name === 'uploadPage';
  const headers = {
    'Content-Security-Policy': { schema: { type: 'string' } },
    'X-Content-Type-Options': { schema: { const: 'nosniff' } },
    'Cache-Control': { schema: { type: 'string' } },
    ...(page ? {} : { ETag: { schema: { type: 'string' } } }),
  };
  const content = page
    ? { 'text/html': { schema: { type: 'string' } } }
    : {
        'text/javascript': { schema: { type: 'string' } },
        'text/css': { schema: { type: 'string' } },
        'image/svg+xml': { schema: { type: 'string' } },
      };
  return {
    operationId: method === 'get' ? name : `${name}Head`,
    tags: ['meta'],
    summary: page
      ? 'The upload page (on locally, off in Azure unless UI_ENABLED=true)'
      : "A script, style or icon of the upload page's build",
    security: [],
    responses: {
      '200': {
        description: page ? 'The page.' : 'The file.',
        headers,
        ...(method === 'get' ? { content } : {}),
      },
      ...(page ? {} : { '304': { description: 'Not modified (If-None-Match).', headers } }),
      ...errorAnswers(['NotFound', 'InternalError'], { head: method === 'head' }),
    },
  };
}

function describeApi(method: 'get' | 'head'): Json {
  return {
    operationId: method === 'get' ? 'describeApi' : 'describeApiHead',
    tags: ['meta'],
    summary: 'This description; its server is the route prefix the request came under',
    security: [],
    responses: {
      '200': {
        description: 'OpenAPI 3.1.',
        headers: {
          'Cache-Control': { schema: { type: 'string' } },
          'x-request-id': ref('headers/RequestId'),
        },
        ...(method === 'get'
          ? {
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['openapi', 'paths'],
                    properties: { openapi: { const: '3.1.0' }, paths: { type: 'object' } },
                  },
                },
              },
            }
          : {}),
      },
      ...errorAnswers(['InternalError'], { head: method === 'head' }),
    },
  };
}

function fallback(): PathItem {
  const item: PathItem = {
    parameters: [
      {
        name: 'path',
        in: 'path',
        required: true,
        description: 'Any path no other operation takes (the catch-all `{*path}`: any number of segments).',
        schema: { type: 'string' },
      },
    ],
  };
  for (const method of ['get', 'head', 'post', 'put', 'patch', 'delete', 'options']) {
    item[method] = {
      operationId: `fallback${method[0]!.toUpperCase()}${method.slice(1)}`,
      tags: ['meta'],
      summary: 'No such route, or not this method',
      security: [],
      responses: errorAnswers(['NotFound', 'MethodNotAllowed', 'InternalError'], {
        head: method === 'head',
      }),
    };
  }
  return item;
}

function components(): Json {
  const header = (description: string, schema: Json, required = false): Json => ({
    description,
    ...(required ? { required } : {}),
    schema,
  });
  const headerParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({
    name,
    in: 'header',
    required: false,
    description,
    schema,
  });
  const queryParam = (name: string, description: string, schema: Json = { type: 'string' }): Json => ({
    name,
    in: 'query',
    required: false,
    description,
    schema,
  });
  const cosmosHeaders = Object.fromEntries(
    PASSED_BACK_HEADERS.filter((name) => name !== 'etag').map((name) => [
      cosmosHeaderName(name),
      header(`Cosmos DB's \`${name}\`, passed back.`, { type: 'string' }),
    ]),
  );
  return {
    securitySchemes: {
      functionKey: {
        type: 'apiKey',
        in: 'header',
        name: 'x-functions-key',
        description:
          'A function key (authLevel `function`), checked by the Functions host. Wins over `code`.',
      },
      functionKeyQuery: {
        type: 'apiKey',
        in: 'query',
        name: 'code',
        description: 'The function key in the query, for clients that cannot set headers (links).',
      },
      bearerToken: {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'With end-user sign-in (`AUTH_JWT_ISSUER`, `AUTH_JWT_AUDIENCE`): an OpenID Connect token of that issuer for ' +
          'that audience, checked by the bridge. (With `AUTH_EASY_AUTH`, App Service Authentication signs callers in ' +
          'and injects `x-ms-client-principal` itself.)',
      },
    },
    parameters: {
      db: pathParam('db', 'The database id.'),
      coll: pathParam('coll', 'The collection (container) id.'),
      doc: pathParam('doc', 'The document id.'),
      id: pathParam('id', 'The attachment id.'),
      uploadId: pathParam('uploadId', "The upload id, from the creation answer's `Location`."),
      partitionKeyHeader: headerParam(
        'x-ms-documentdb-partitionkey',
        'The document\'s partition key, as Cosmos DB takes it: a JSON array (`["welcome"]`).',
        { type: 'string', examples: ['["welcome"]'] },
      ),
      partitionKeyQuery: queryParam(
        'partitionKey',
        'The partition key, for links that cannot carry headers: a plain value or a JSON array. Must agree with the header.',
      ),
      sessionToken: headerParam('x-ms-session-token', "Cosmos DB's session token, passed on.", {
        type: 'string',
        pattern: '^[\\x21-\\x7e]{1,16384}$',
      }),
      slug: headerParam(
        'Slug',
        'The attachment id for raw media (percent-encoded UTF-8, RFC 5023). Makes the body media whatever its type.',
      ),
      idMode: headerParam(
        'x-bridge-id-mode',
        'How ids are chosen: the name as given, upsert, or a unique id derived from it.',
        {
          type: 'string',
          enum: ['name', 'upsert', 'unique'],
        },
      ),
      upsert: headerParam('x-ms-documentdb-is-upsert', "Cosmos DB's create-or-replace.", {
        type: 'string',
        enum: ['true', 'false'],
      }),
      ifMatch: headerParam(
        'If-Match',
        'Only while the attachment is at this version (its `_etag`); 412 otherwise.',
      ),
      ifNoneMatch: headerParam('If-None-Match', '304 when one of these entity tags (or `*`) is current.'),
      ifModifiedSince: headerParam('If-Modified-Since', '304 unless changed since (HTTP date).'),
      range: headerParam(
        'Range',
        'One `bytes=` range (`a-b`, `a-`, `-n`): 206. Several ranges get the whole body.',
        {
          type: 'string',
          examples: ['bytes=0-1023'],
        },
      ),
      ifRange: headerParam('If-Range', 'The range only while this strong ETag, or this date, is current.'),
      download: queryParam('download', '`1` or `true`: `Content-Disposition: attachment`.', {
        type: 'string',
        enum: ['1', 'true'],
      }),
      maxItemCountQuery: queryParam('maxItemCount', 'Page size: -1, or 1 to 1000.', {
        type: 'string',
        pattern: '^-?[0-9]+$',
      }),
      maxItemCountHeader: headerParam('x-ms-max-item-count', 'Page size, as the query parameter.', {
        type: 'string',
        pattern: '^-?[0-9]+$',
      }),
      continuationQuery: queryParam('continuation', "The previous page's `x-ms-continuation`."),
      continuationHeader: headerParam('x-ms-continuation', "The previous page's `x-ms-continuation`."),
      tusResumable: {
        name: 'Tus-Resumable',
        in: 'header',
        required: true,
        description: 'The tus version: 412 with `Tus-Version` otherwise.',
        schema: { const: TUS_VERSION },
      },
      uploadLength: headerParam(
        'Upload-Length',
        'The size of the whole upload, in bytes (at most `MAX_UPLOAD_BYTES`).',
        {
          type: 'string',
          pattern: '^[0-9]+$',
        },
      ),
      uploadDeferLength: headerParam(
        'Upload-Defer-Length',
        'Instead of `Upload-Length`: the length comes later.',
        {
          const: '1',
        },
      ),
      uploadMetadata: headerParam(
        'Upload-Metadata',
        'Comma-separated `key base64value` pairs: `filename` (required: the attachment id), `filetype` (its content type), ' +
          '`uniqueId` (flag: a unique id derived from the file name).',
      ),
      uploadChecksum: headerParam(
        'Upload-Checksum',
        `\`algorithm base64digest\` of this chunk (${CHECKSUM_ALGORITHMS.join(', ')}); 460 on mismatch.`,
      ),
      uploadOffsetRequest: {
        name: 'Upload-Offset',
        in: 'header',
        required: true,
        description: "The upload's current offset (409 otherwise).",
        schema: { type: 'string', pattern: '^[0-9]+$' },
      },
    },
    headers: {
      RequestId: header('The invocation id, for finding this request in the logs.', { type: 'string' }),
      WwwAuthenticate: header('`Bearer` challenge, when bearer tokens are expected.', { type: 'string' }),
      Allow: header('The methods the path takes.', { type: 'string' }, true),
      RetryAfter: header('Seconds to wait before trying again.', { type: 'string', pattern: '^[0-9]+$' }),
      CosmosEtag: header("The resource's `_etag`.", { type: 'string' }),
      MediaEtag: header(
        'Strong `"<sha256>"` of the bytes the bridge recorded, else `W/` and the attachment\'s `_etag`.',
        { type: 'string', pattern: '^(W/)?".*"$' },
      ),
      LastModified: header("The attachment's `_ts`, as an HTTP date.", { type: 'string' }),
      PrivateNoCache: header('Reads are per caller: never stored by shared caches.', {
        const: 'private, no-cache',
      }),
      ContentLength: header('Bytes in the body (of the GET answer, for HEAD).', {
        type: 'string',
        pattern: '^[0-9]+$',
      }),
      ContentRange: header('`bytes a-b/size`; `bytes */size` on a 416.', {
        type: 'string',
        pattern: '^bytes ([0-9]+-[0-9]+|\\*)/[0-9]+$',
      }),
      ContentDisposition: header(
        '`inline` only for types a browser shows without running anything; else `attachment`.',
        {
          type: 'string',
          pattern: '^(inline|attachment)',
        },
      ),
      MediaType: header("The attachment's `contentType`, or `application/octet-stream`.", { type: 'string' }),
      AcceptRanges: header('Byte ranges are served.', { const: 'bytes' }),
      NoSniff: header('Browsers must not guess another type.', { const: 'nosniff' }),
      Continuation: header('The token for the next page, when there is one.', { type: 'string' }),
      ItemCount: header('Attachments on this page.', { type: 'string', pattern: '^[0-9]+$' }),
      TusResumableAnswer: header(
        'The tus version spoken, on every tus answer.',
        { const: TUS_VERSION },
        true,
      ),
      ExposeHeaders: header('The tus and bridge headers a browser client may read.', { type: 'string' }),
      UploadOffset: header('Bytes received so far.', { type: 'string', pattern: '^[0-9]+$' }),
      UploadLength: header('The size of the whole upload.', { type: 'string', pattern: '^[0-9]+$' }),
      UploadDeferLength: header('The length is not known yet.', { const: '1' }),
      UploadMetadataAnswer: header('The `Upload-Metadata` the upload was created with.', { type: 'string' }),
      UploadExpires: header('When an unfinished upload goes (HTTP date).', { type: 'string' }),
      AttachmentLocation: header("Once complete: the attachment's path under the route prefix.", {
        type: 'string',
      }),
      XAttachment: header(
        'Once complete: base64 JSON of the attachment (the resource plus `size` and `sha256`).',
        {
          type: 'string',
          contentEncoding: 'base64',
          contentMediaType: 'application/json',
        },
      ),
      ...cosmosHeaders,
    },
    schemas: {
      Error: {
        type: 'object',
        description: 'Every error the bridge answers.',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', description: 'What went wrong, for programs to branch on.' },
          message: { type: 'string', description: 'What went wrong, in words; never a secret.' },
        },
        additionalProperties: false,
      },
      Attachment: {
        type: 'object',
        description: 'A Cosmos DB attachment resource; custom properties are kept.',
        required: ['id', '_rid', '_self', '_etag', '_ts'],
        properties: {
          id: { type: 'string' },
          contentType: { type: 'string' },
          media: { type: 'string', description: 'A `/media/...` link (managed media), or a URL.' },
          size: { type: 'integer', minimum: 0, description: 'Bytes the bridge stored.' },
          sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 (hex) of those bytes.' },
          originalName: { type: 'string', description: 'The file name a unique id was derived from.' },
          _rid: { type: 'string' },
          _self: { type: 'string' },
          _etag: { type: 'string' },
          _ts: { type: 'integer' },
        },
        additionalProperties: true,
      },
      CreateResult: {
        description:
          'A multipart upload: one entry per file or metadata part, in order. Otherwise the resource.',
        oneOf: [
          {
            type: 'object',
            required: ['attachments'],
            properties: { attachments: { type: 'array', items: schemaRef('Attachment') } },
            additionalProperties: false,
          },
          schemaRef('Attachment'),
        ],
      },
      AttachmentPage: {
        type: 'object',
        required: ['_rid', 'Attachments', '_count'],
        properties: {
          _rid: { type: 'string' },
          Attachments: { type: 'array', items: schemaRef('Attachment') },
          _count: { type: 'integer', minimum: 0 },
        },
      },
      AttachmentBody: {
        type: 'object',
        description: 'A metadata attachment: `id`, `contentType`, `media` and any custom properties.',
        required: ['id'],
        properties: {
          id: { type: 'string', minLength: 1, maxLength: 255 },
          contentType: { type: 'string' },
          media: { type: 'string' },
        },
        additionalProperties: true,
      },
      AttachmentForm: {
        type: 'object',
        description:
          "File parts (any field name; the file name is the id, the part's type the content type), and text fields " +
          'before them: `partitionKey`, `idMode`, `x-ms-documentdb-is-upsert`, `metadata` (a JSON attachment body).',
        properties: {
          partitionKey: { type: 'string' },
          idMode: { type: 'string', enum: ['name', 'upsert', 'unique'] },
          metadata: { type: 'string', contentMediaType: 'application/json' },
        },
        additionalProperties: { type: 'string', contentMediaType: 'application/octet-stream' },
      },
      UploadFailure: {
        type: 'object',
        description: 'An upload whose completion failed: the error, and the upload as `UploadStatus` has it.',
        required: ['code', 'message', 'id', 'state', 'offset', 'complete', 'completable'],
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          completable: {
            type: 'boolean',
            description:
              'True when sending the last chunk again can complete it; false when it must start over.',
          },
          id: { type: 'string' },
          state: { enum: ['uploading', 'failed'] },
          offset: { type: 'integer', minimum: 0 },
          length: { type: ['integer', 'null'], minimum: 0 },
          expires: { type: ['string', 'null'], format: 'date-time' },
          complete: { const: false },
          attachmentId: { type: 'string' },
        },
        additionalProperties: false,
      },
      UploadStatus: {
        type: 'object',
        required: ['id', 'state', 'offset', 'length', 'expires', 'complete', 'attachmentId'],
        properties: {
          id: { type: 'string' },
          state: { enum: ['uploading', 'completing', 'complete', 'failed'] },
          offset: { type: 'integer', minimum: 0 },
          length: { type: ['integer', 'null'], minimum: 0 },
          expires: { type: ['string', 'null'], format: 'date-time' },
          complete: { type: 'boolean' },
          attachmentId: { type: 'string' },
          attachment: schemaRef('Attachment'),
          location: { type: 'string' },
        },
        additionalProperties: false,
      },
    },
  };
}
