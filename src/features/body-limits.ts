import type { BodyLimits } from '../http/request-body.js';
import type { RequestContext } from './context.js';

/** The limits on a request body: its size (MAX_REQUEST_BYTES unless named), and the slowest rate. */
export function bodyLimits(
  { settings }: Pick<RequestContext, 'settings'>,
  maxBytes: number = settings.limits.maxRequestBytes,
  limitName = 'MAX_REQUEST_BYTES',
): BodyLimits {
  return {
    maxBytes,
    limitName,
    minBytesPerSecond: settings.upstream.minUploadBytesPerSecond,
    graceMs: settings.upstream.minRateGraceMs,
  };
}
