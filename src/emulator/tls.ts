import { X509Certificate, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

/** The emulator's TLS identity, and where its certificate is for `NODE_EXTRA_CA_CERTS`. */
export interface TlsIdentity {
  cert: string;
  key: string;
  certPath: string;
}

const CERT_FILE = 'cert.pem';
const KEY_FILE = 'key.pem';
const VALID_DAYS = 825;
/** A certificate this close to its end is made again at start. */
const RENEW_BEFORE_MS = 30 * 24 * 60 * 60 * 1000;

/**
 * The per-user folder the certificate lives in, so `NODE_EXTRA_CA_CERTS` can point at one stable path
 * across runs: `%LOCALAPPDATA%`, `~/Library/Application Support` or `$XDG_DATA_HOME` (`~/.local/share`).
 */
export function defaultTlsDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    process.platform === 'win32'
      ? (env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'))
      : process.platform === 'darwin'
        ? join(homedir(), 'Library', 'Application Support')
        : env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(base, 'cosmos-attachment-bridge', 'emulator-tls');
}

/**
 * Reads the certificate made at an earlier start, or makes one (self-signed, for `localhost`,
 * `127.0.0.1` and `::1`, RSA so that TLS 1.0 clients can use it too). Several emulators starting at
 * once (one per test file) each make a candidate in a folder of their own and rename it into place:
 * the first rename wins and the others read the winner's, so a key never pairs with another's cert.
 */
export async function loadOrCreateIdentity(dir: string = defaultTlsDir()): Promise<TlsIdentity> {
  const existing = await readIdentity(dir);
  if (existing && !expiresSoon(existing.cert)) return existing;
  const candidate = `${dir}.new-${randomUUID()}`;
  await mkdir(candidate, { recursive: true, mode: 0o700 });
  try {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 60 * 60 * 1000),
      notAfterDate: new Date(Date.now() + VALID_DAYS * 24 * 60 * 60 * 1000),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        {
          name: 'keyUsage',
          digitalSignature: true,
          keyEncipherment: true,
          keyCertSign: true,
          critical: true,
        },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
            { type: 7, ip: '::1' },
          ],
        },
      ],
    });
    await writeFile(join(candidate, KEY_FILE), pems.private, { mode: 0o600 });
    await writeFile(join(candidate, CERT_FILE), pems.cert);
    if (existing) await rm(dir, { recursive: true, force: true });
    await rename(candidate, dir).catch((err: NodeJS.ErrnoException) => {
      // Another start got there first: use its identity.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST' && err.code !== 'EPERM') throw err;
    });
  } finally {
    await rm(candidate, { recursive: true, force: true });
  }
  const made = await readIdentity(dir);
  if (!made) throw new Error(`The emulator's TLS certificate could not be stored in ${dir}.`);
  return made;
}

async function readIdentity(dir: string): Promise<TlsIdentity | undefined> {
  try {
    const [cert, key] = await Promise.all([
      readFile(join(dir, CERT_FILE), 'utf8'),
      readFile(join(dir, KEY_FILE), 'utf8'),
    ]);
    return { cert, key, certPath: join(dir, CERT_FILE) };
  } catch {
    return undefined;
  }
}

function expiresSoon(cert: string): boolean {
  try {
    return Date.parse(new X509Certificate(cert).validTo) - Date.now() < RENEW_BEFORE_MS;
  } catch {
    return true;
  }
}
