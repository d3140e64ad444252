import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ObservedRequest } from '../../src/functions-host/host.js';
import type { ResponseObserver } from '../../src/functions-host/http-forwarder.js';

/**
 * Every answer the local Functions host gives in front of the app, in every test file that runs the
 * stack (test/helpers/stack.ts), one JSON line each; `openapi-conformance.test.ts` runs after all
 * other files and checks each against the OpenAPI description. Files per test process, in a folder
 * named by the Vitest process that forked them (as test/helpers/scrape.ts does), or in
 * BRIDGE_ANSWERS_DIR (to record some files' answers once and check them again while editing).
 */
export const ANSWERS_DIR =
  process.env.BRIDGE_ANSWERS_DIR || join(tmpdir(), `attachment-bridge-answers-${process.ppid}`);

/** JSON bodies are kept up to this size for checking; a larger one is recorded as cut off. */
const MAX_JSON_BYTES = 1024 * 1024;

export interface RecordedAnswer {
  method: string;
  /** The path as sent (percent-encoded); the query is left out (it may hold a function key). */
  path: string;
  status: number;
  headers: Record<string, string>;
  /** Bytes of body the caller was sent. */
  bodyBytes: number;
  /** The body as text, when it was JSON and not larger than MAX_JSON_BYTES. */
  json?: string;
  /** False when the answer was cut off before its end (the caller left, the worker failed). */
  finished: boolean;
}

/** An observer for one answer, writing its record when the answer is over. */
export function answerRecorder(request: ObservedRequest): ResponseObserver {
  const queryStart = request.url.indexOf('?');
  const record: RecordedAnswer = {
    method: request.method,
    path: queryStart < 0 ? request.url : request.url.slice(0, queryStart),
    status: 0,
    headers: {},
    bodyBytes: 0,
    finished: false,
  };
  let chunks: Buffer[] | undefined;
  return {
    head(status, headers) {
      record.status = status;
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined) record.headers[name.toLowerCase()] = [value].flat().join(', ');
      }
      if (/^application\/([\w.+-]*\+)?json\b/i.test(record.headers['content-type'] ?? '')) chunks = [];
    },
    chunk(bytes) {
      record.bodyBytes += bytes.length;
      if (chunks && record.bodyBytes <= MAX_JSON_BYTES) chunks.push(bytes);
      else chunks = undefined;
    },
    end(finished) {
      if (record.status === 0) return;
      record.finished = finished;
      if (chunks) record.json = Buffer.concat(chunks).toString('utf8');
      mkdirSync(ANSWERS_DIR, { recursive: true });
      appendFileSync(join(ANSWERS_DIR, `answers-${process.pid}.jsonl`), `${JSON.stringify(record)}\n`);
    },
  };
}
