/**
 * The one table of errors a caller can see. Every failure becomes `{"code","message"}` with the
 * status listed here, so callers can branch on `code` and read `message`.
 */
export const ERRORS = {
  BadRequest: 400,
  MalformedMultipart: 400,
  MissingBoundary: 400,
  MissingFilename: 400,
  NoAttachments: 400,
  InvalidId: 400,
  InvalidJson: 400,
  InvalidPartitionKey: 400,
  InvalidHeader: 400,
  InvalidContentType: 400,
  RequestAborted: 400,
  Unauthorized: 401,
  InvalidSignature: 401,
  Forbidden: 403,
  NotFound: 404,
  MediaElsewhere: 404,
  MethodNotAllowed: 405,
  RequestTimeout: 408,
  Conflict: 409,
  Gone: 410,
  PreconditionFailed: 412,
  PayloadTooLarge: 413,
  HeadersTooLarge: 431,
  UnsupportedMediaType: 415,
  RangeNotSatisfiable: 416,
  Locked: 423,
  ChecksumMismatch: 460,
  InternalError: 500,
  ConfigurationError: 500,
  UpstreamUnreachable: 502,
  UpstreamBadResponse: 502,
  UpstreamAuthFailed: 502,
  UpstreamUnavailable: 503,
  AuthUnavailable: 503,
  UpstreamTimeout: 504,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERRORS;

/** An error meant for the caller: its message must never hold a secret. */
export class BridgeError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'BridgeError';
    this.code = code;
    this.status = ERRORS[code];
    this.headers = headers;
  }
}

/**
 * An error status Cosmos DB answered with, passed through to the caller with Cosmos's own code and
 * message (404 missing document, 409 taken id, 413, ...).
 */
export class UpstreamStatusError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'UpstreamStatusError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export type CallerError = BridgeError | UpstreamStatusError;

export function isCallerError(err: unknown): err is CallerError {
  return err instanceof BridgeError || err instanceof UpstreamStatusError;
}

export function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  const text = JSON.stringify(body);
  return new Response(text, {
    status,
    // With its length the answer goes out in one write, not chunked (a write more per answer).
    headers: {
      ...headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(text)),
    },
  });
}

export function errorResponse(err: CallerError): Response {
  return jsonResponse(err.status, { code: err.code, message: err.message }, err.headers);
}
