import { randomBytes } from 'node:crypto';

export type Log = (line: string) => void;

/** Attachment ids are unique per document: every upload gets a fresh one. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** The list starting at position `by` (wrapping), so the order of paths changes from run to run. */
export function rotated<T>(list: readonly T[], by: number): T[] {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}
