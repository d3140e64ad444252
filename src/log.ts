/** Where the bridge reports what it did. Callers of these methods must never pass a secret. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

type Level = keyof Logger;

/** One JSON object per line on stdout/stderr: easy to grep locally, easy to ingest in Azure. */
export function jsonLineLogger(write: (level: Level, line: string) => void = writeToConsole): Logger {
  const emit = (level: Level, message: string, fields?: Record<string, unknown>) =>
    write(level, JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }));
  return {
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
  };
}

function writeToConsole(level: Level, line: string): void {
  if (level === 'info') console.log(line);
  else console.error(line);
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** An error's name, message and code for a log line; stacks stay out of caller-facing output. */
export function describeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { error: err.name, detail: err.message, ...(code === undefined ? {} : { code }) };
  }
  return { error: String(err) };
}
