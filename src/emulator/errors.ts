/** A refusal the emulator answers with, shaped like the service's: `{"code","message"}` and a status. */
export class EmulatorError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export function badRequest(message: string, headers: Record<string, string> = {}): EmulatorError {
  return new EmulatorError(400, 'BadRequest', message, headers);
}

export function notFound(): EmulatorError {
  return new EmulatorError(404, 'NotFound', 'Entity with the specified id does not exist in the system.');
}

export function conflict(): EmulatorError {
  return new EmulatorError(409, 'Conflict', 'Entity with the specified id already exists in the system.');
}

export function attachmentConflict(): EmulatorError {
  return new EmulatorError(
    409,
    'Conflict',
    'The ID or Slug provided for the new attachment has been taken by an existing attachment.',
  );
}

export function preconditionFailed(): EmulatorError {
  return new EmulatorError(
    412,
    'PreconditionFailed',
    'Operation cannot be performed because one of the specified precondition is not met.',
  );
}

export function tooLarge(): EmulatorError {
  return new EmulatorError(413, 'RequestEntityTooLarge', 'Request size is too large.');
}
