import { X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator } from '../src/emulator/server.js';
import { loadOrCreateIdentity } from '../src/emulator/tls.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'emulator-tls-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the emulator certificate', () => {
  it('is made once: emulators starting together end up with the same certificate and key', async () => {
    const where = join(dir, 'shared');
    const identities = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(where)));
    expect(new Set(identities.map((i) => i.cert)).size).toBe(1);
    expect(new Set(identities.map((i) => i.key)).size).toBe(1);
    expect(await readdir(dir)).toEqual(['shared']);
    const again = await loadOrCreateIdentity(where);
    expect(again.cert).toBe(identities[0]!.cert);
    const cert = new X509Certificate(again.cert);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('verifies for localhost against that certificate alone, and HTTP still works on the same port', async () => {
    const emulator = await startEmulator({ port: 0, tls: { dir: join(dir, 'served') } });
    try {
      const identity = await loadOrCreateIdentity(join(dir, 'served'));
      const protocol = await new Promise<string | null>((resolve, reject) => {
        const socket = connect(
          { port: emulator.port, host: '127.0.0.1', servername: 'localhost', ca: identity.cert },
          () => {
            resolve(socket.getProtocol());
            socket.end();
          },
        );
        socket.once('error', reject);
      });
      expect(protocol).toBe('TLSv1.3');
      const plain = await fetch(`${emulator.url}/_emulator/stats`);
      expect(plain.status).toBe(200);
      expect(emulator.certPath).toBe(identity.certPath);
    } finally {
      await emulator.close();
    }
  });
});
