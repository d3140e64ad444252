import { createSHA256, type IHasher } from 'hash-wasm';
import type { UploadInfo } from './state.js';

/**
 * The SHA-256 of an upload, continued across requests. Only blob mode keeps one: its completion has
 * nothing else to read the file with, and a hash kept while the bytes arrive spares it reading the
 * whole blob back. hash-wasm can save its state and load it again on any instance (Node's own hash
 * cannot); optimised by V8 it runs at some 150 MiB/s here (src/runtime.ts compiles it before the
 * rest of WebAssembly is kept on the baseline tier, where it would run at a tenth of that). With
 * managed media the copy into Cosmos DB reads every byte anyway and hashes them with Node's own SHA-256.
 *
 * Undefined when no hash is kept, or the saved one cannot be loaded (saved by an incompatible version
 * of hash-wasm): completion then reads the bytes back.
 */
export async function hasherAt(info: UploadInfo): Promise<IHasher | undefined> {
  if (info.staging !== 'media') return undefined;
  const hasher = await createSHA256();
  hasher.init();
  if (info.offset === 0) return hasher;
  if (info.hash === undefined) return undefined;
  try {
    hasher.load(Buffer.from(info.hash, 'base64'));
    return hasher;
  } catch {
    return undefined;
  }
}

/**
 * Compiles hash-wasm's SHA-256 module now (hash-wasm keeps the compiled module for every later
 * hasher), before the runtime restricts WebAssembly compiled afterwards to V8's baseline tier
 * (src/runtime.ts): hashing is most of a blob-mode PATCH's CPU, and the baseline tier is ten times slower.
 */
export async function compileUploadHasher(): Promise<void> {
  const hasher = await createSHA256();
  hasher.init();
  hasher.update(new Uint8Array(64));
  hasher.digest();
}
