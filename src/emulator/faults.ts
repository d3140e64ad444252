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

/** What each rule field must hold; anything else in a rule is refused. */
const FIELDS: Record<keyof FaultRule, (value: unknown) => boolean> = {
  method: (v) => typeof v === 'string' && /^[A-Za-z]+$/.test(v),
  path: (v) => typeof v === 'string',
  status: (v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599,
  afterBody: (v) => typeof v === 'boolean',
  closeEarly: (v) => typeof v === 'boolean',
  retryAfterMs: nonNegative,
  delayMs: nonNegative,
  dropAfterBytes: nonNegative,
  dropAfterCommit: (v) => typeof v === 'boolean',
  statusAfterCommit: (v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599,
  stallMs: nonNegative,
  times: (v) => Number.isInteger(v) && (v as number) >= 1,
  probability: (v) => typeof v === 'number' && v >= 0 && v <= 1,
};

function nonNegative(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** A rule the plan refuses: the fault API answers it with 400. */
export class FaultRuleError extends Error {}

/** Checks one rule: known fields of the right types, and at least one effect. */
export function checkRule(rule: unknown): FaultRule {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    throw new FaultRuleError('A fault rule must be a JSON object.');
  }
  for (const [name, value] of Object.entries(rule)) {
    const check = FIELDS[name as keyof FaultRule];
    if (!check) throw new FaultRuleError(`Unknown fault rule field "${name}".`);
    if (!check(value)) throw new FaultRuleError(`Fault rule field "${name}" has an invalid value.`);
  }
  const r = rule as FaultRule;
  const effects = [r.status, r.delayMs, r.dropAfterBytes, r.dropAfterCommit, r.statusAfterCommit, r.stallMs];
  if (effects.every((effect) => effect === undefined || effect === false)) {
    throw new FaultRuleError(
      'A fault rule needs an effect: status, delayMs, dropAfterBytes, dropAfterCommit, statusAfterCommit or stallMs.',
    );
  }
  if ((r.afterBody || r.closeEarly || r.retryAfterMs !== undefined) && r.status === undefined) {
    throw new FaultRuleError('afterBody, closeEarly and retryAfterMs go with status.');
  }
  return r;
}

export class FaultPlan {
  #rules: { rule: FaultRule; left: number }[] = [];

  /** Adds a rule (FaultRuleError if it is malformed); rules are tried in the order added, the first that applies wins. */
  add(rule: FaultRule): void {
    checkRule(rule);
    this.#rules.push({ rule: { ...rule }, left: rule.times ?? Infinity });
  }

  /** Replaces every rule at once; nothing changes if any of them is malformed. */
  replace(rules: unknown): void {
    if (!Array.isArray(rules)) throw new FaultRuleError('Expected a JSON array of fault rules.');
    const checked = rules.map(checkRule);
    this.clear();
    for (const rule of checked) this.add(rule);
  }

  /** The rules still active, with how many requests each may still affect (`remaining`, absent when unlimited). */
  list(): (FaultRule & { remaining?: number })[] {
    return this.#rules
      .filter((entry) => entry.left > 0)
      .map((entry) =>
        Number.isFinite(entry.left) ? { ...entry.rule, remaining: entry.left } : { ...entry.rule },
      );
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
