/**
 * Failures of the Cosmos DB client itself: it could not reach the service, or the service did not
 * answer in time. Answers Cosmos DB did give (any status) are replies, not errors. What a caller sees
 * for these is decided at one edge (src/http/error-edge.ts).
 */
export type CosmosErrorCode = 'COSMOS_UNREACHABLE' | 'COSMOS_TIMEOUT';

export class CosmosError extends Error {
  readonly code: CosmosErrorCode;
  /** True when the request never left: no connection could be made, so nothing can have been applied. */
  readonly notSent: boolean;

  constructor(code: CosmosErrorCode, message: string, options?: { cause?: unknown; notSent?: boolean }) {
    super(message, options);
    this.name = 'CosmosError';
    this.code = code;
    this.notSent = options?.notSent ?? false;
  }
}

/** The create (or any write) may or may not have been applied: the request went out and no answer came back. */
export function isOutcomeUnknown(err: unknown): err is CosmosError {
  return err instanceof CosmosError && !err.notSent;
}
