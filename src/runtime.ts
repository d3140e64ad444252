import v8 from 'node:v8';
import { compileUploadHasher } from './features/uploads/hashing.js';
import { mediaStoreName, type Env } from './settings.js';

/**
 * Process-wide tuning for a streaming bridge, applied by each host before the first request.
 *
 * undici parses HTTP with a WebAssembly build of llhttp; V8's optimising compiler needs 35-40 MiB
 * while it compiles that module on the first upstream call, a peak the bridge otherwise never comes
 * near. Kept on V8's baseline compiler (Liftoff), the module costs a few MiB, and parsing Cosmos DB's
 * small answers does not notice (see BENCHMARKS.md). The flag only affects WebAssembly compiled after
 * it is set, hence before the first request.
 *
 * Resumable uploads in blob mode hash every byte with hash-wasm's SHA-256, which on Liftoff alone runs
 * about ten times slower than optimised (some 15 against 150 MiB/s here): in blob mode its small module
 * is compiled first, so it keeps V8's optimising tier (docs/resumable-uploads.md, "Where a PATCH's time
 * goes"). Not otherwise: it costs some 5 MiB of resident memory, and only blob mode hashes that way.
 */
export async function tuneRuntime(env: Env): Promise<void> {
  if (mediaStoreName(env) === 'blob') await compileUploadHasher();
  v8.setFlagsFromString('--liftoff-only');
}

/**
 * Node flags the bridge's process should start with; set by `npm start`, and in Azure through the
 * NODE_OPTIONS app setting. A 1 MiB young generation is collected every few MiB of body, and with it
 * the request-body buffers; by default V8 lets some 64 MiB of them pile up before a full collection.
 */
export const RECOMMENDED_NODE_OPTIONS = ['--max-semi-space-size=1'] as const;
