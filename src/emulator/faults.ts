/**
 * Fault switches for the emulator, so tests drive throttling, slowness and broken connections over
 * real sockets. A rule applies to matching requests that passed the signature check.
 */
export interface FaultRule {
  /** Only requests with this method (e.g. "POST"); any method when unset. */
  method?: string;
  /** Only requests whose path contains this text (e.g. "/attachments"); any path when unset. */
  path?: string;
  /** Answer with this status before reading the body: 429 (throttled), 449 (retry with), 503, or any other. */
  status?: number;
  /** With `status`: read the whole body first, then answer (a slow upload throttled at its end). */
  afterBody?: boolean;
  /** With `status`: close the connection right after answering, unread body and all. */
  closeEarly?: boolean;
  /** With 429: the `x-ms-retry-after-ms` hint. */
  retryAfterMs?: number;
  /** Wait this long before answering (after the work is done). */
  delayMs?: number;
  /** Read this many bytes of the body, then drop the connection without answering. */
  dropAfterBytes?: number;
  /** Do the work (a create is stored), then drop the connection instead of answering. */
  dropAfterCommit?: boolean;
  /** Do the work (a create is stored), then answer with this error status instead (408, 503...). */
  statusAfterCommit?: number;
  /** Take the request in, then wait this long before storing it: a create that is stored late. */
  stallMs?: number;
  /** Apply to this many matching requests, then retire; every matching request when unset. */
  times?: number;
  /** Chance that a matching request is affected, 0..1 (soak tests); 1 when unset. */
  probability?: number;
}

const STATUS_CODES: Record<number, { code: string; message: string }> = {
  429: {
    code: 'TooManyRequests',
    message:
      'Request rate is large. More Request Units may be needed, so no changes were made. Please retry this request later.',
  },
  449: {
    code: 'RetryWith',
    message: 'Conflicting request to resource has been attempted. Retry to avoid conflicts.',
  },
  503: { code: 'ServiceUnavailable', message: 'Service is currently unavailable. Please retry.' },
  408: { code: 'RequestTimeout', message: 'Request timed out.' },
  500: {
    code: 'InternalServerError',
    message: 'Unknown server error occurred when processing this request.',
  },
};

export function faultStatus(status: number): { code: string; message: string } {
  return STATUS_CODES[status] ?? { code: `Http${status}`, message: 'Injected fault.' };
}

export class FaultPlan {
  #rules: { rule: FaultRule; left: number }[] = [];

  /** Adds a rule; rules are tried in the order added, the first that applies wins. */
  add(rule: FaultRule): void {
    this.#rules.push({ rule, left: rule.times ?? Infinity });
  }

  replace(rules: FaultRule[]): void {
    this.clear();
    for (const rule of rules) this.add(rule);
  }

  clear(): void {
    this.#rules = [];
  }

  /** The fault for one request, if any; counts it against the rule's `times`. */
  take(method: string, path: string): FaultRule | undefined {
    for (const entry of this.#rules) {
      const { rule } = entry;
      if (entry.left <= 0) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.path !== undefined && !path.includes(rule.path)) continue;
      if (rule.probability !== undefined && Math.random() >= rule.probability) continue;
      entry.left -= 1;
      return rule;
    }
    return undefined;
  }
}
