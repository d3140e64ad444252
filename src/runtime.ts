import v8 from 'node:v8';
import { compileUploadHasher } from './features/uploads/hashing.js';
import { mediaStoreName, type Env } from './settings.js';

/**
 * How much the old generation may grow past what survived a full collection before the next one
 * starts: 1 + percent/100 of it (V8's `--heap-growing-percent`; by default V8 picks a factor near 1.1
 * to 2 for a small heap). Each request-body chunk node:http reads is a new 64 KiB buffer outside the
 * heap, and V8 counts such memory allocated since the last full collection against the old
 * generation's limit. The worker's heap is small (about 11 MB live), so with V8's own factor that
 * headroom went every 30 MiB of upload: a full, concurrent mark-compact 30 to 50 times per GiB, a
 * quarter to a third of the worker's CPU per byte (docs/performance.md, section 3). With five times the live heap of
 * headroom the young-generation collections free those buffers first and full collections stop,
 * while peak RSS stays where it was (the buffers die young; little else is promoted).
 */
export const HEAP_GROWING_PERCENT = 400;

/**
 * Process-wide tuning for a streaming bridge, applied by each host before the first request.
 *
 * undici parses HTTP with a WebAssembly build of llhttp; V8's optimising compiler needs 35-40 MiB
 * while it compiles that module on the first upstream call, a peak the bridge otherwise never comes
 * near. Kept on V8's baseline compiler (Liftoff), the module costs a few MiB, and parsing Cosmos DB's
 * small answers does not notice (docs/cosmos-rest.md). The flag only affects WebAssembly compiled after
 * it is set, hence before the first request.
 *
 * The heap growing factor (above) is set here rather than in NODE_OPTIONS, which does not accept it;
 * V8 reads it each time it sizes the old generation after a full collection.
 *
 * Resumable uploads in blob mode hash every byte with hash-wasm's SHA-256, which on Liftoff alone runs
 * about ten times slower than optimised (some 15 against 150 MiB/s here): in blob mode its small module
 * is compiled first, so it keeps V8's optimising tier (docs/resumable-uploads.md, "Where a PATCH's time
 * goes"). Not otherwise: it costs some 5 MiB of resident memory, and only blob mode hashes that way.
 */
export async function tuneRuntime(env: Env): Promise<void> {
  if (mediaStoreName(env) === 'blob') await compileUploadHasher();
  v8.setFlagsFromString('--liftoff-only');
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

/**
 * Node flags the bridge's process should start with; set by `npm start`, and in Azure through the
 * NODE_OPTIONS app setting. A 1 MiB young generation is collected every few MiB of body, and with it
 * the request-body buffers; by default V8 lets some 64 MiB of them pile up before a full collection.
 */
export const RECOMMENDED_NODE_OPTIONS = ['--max-semi-space-size=1'] as const;
