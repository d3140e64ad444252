// `npm run bench -- download [--quick] [--mib N] [--runs N] [--slow-seconds N]`: a large download
// through the bridge (the app in the local Functions host, through @azure/functions' streaming path,
// as in Azure) against the same bytes straight from the Cosmos DB emulator and from Azurite, with a
// fast reader and a slow (1 MiB/s) one, and the bridge's peak memory for each. Self-contained: it
// starts its own emulator, Azurite and hosts, and shares nothing with the other scenarios.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BlobSASPermissions, BlobServiceClient } from '@azure/storage-blob';
import { request } from 'undici';
import { mediaResourceLink } from '../../src/cosmos/ids.js';
import { signedHeaders } from '../../src/cosmos/signer.js';
import { startAzurite, type Azurite } from '../../src/devhost/azurite.js';
import { EMULATOR_KEY } from '../../src/emulator/server.js';
import { startFunctionsHost, type FunctionsHost } from '../../src/functions-host/host.js';
import { RECOMMENDED_NODE_OPTIONS } from '../../src/runtime.js';
import { loadCosmosSettings } from '../../src/settings.js';

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLIENT = fileURLToPath(new URL('./download-client.js', import.meta.url));
const EMULATOR = fileURLToPath(new URL('../../src/emulator/main.js', import.meta.url));
const OUT_DIR = join(ROOT, '.bench-tmp');
const FUNCTION_KEY = 'bench-download-key';
/** The emulator's seeded document (`npm run emulator` seeds demo/items/welcome). */
const DOC = { db: 'demo', coll: 'items', doc: 'welcome' };
const SLOW_BYTES_PER_SECOND = MiB;

interface Options {
  bytes: number;
  runs: number;
  slowSeconds: number;
}

function parse(argv: string[]): Options {
  const options: Options = { bytes: 1024 * MiB, runs: 3, slowSeconds: 30 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const next = () => Number(argv[++i]);
    if (arg === '--quick') Object.assign(options, { bytes: 256 * MiB, runs: 1, slowSeconds: 15 });
    else if (arg === '--mib') options.bytes = next() * MiB;
    else if (arg === '--runs') options.runs = next();
    else if (arg === '--slow-seconds') options.slowSeconds = next();
    else throw new Error(`download: unknown option ${arg} (--quick, --mib N, --runs N, --slow-seconds N)`);
  }
  if (!(options.bytes > 0 && options.runs >= 1 && options.slowSeconds > 0))
    throw new Error('download: bad option value');
  return options;
}

interface Target {
  name: string;
  /** Fresh URL and headers for one read (emulator signatures carry a date). */
  request(): { url: string; headers: Record<string, string> };
  /** The Functions worker running the app, whose memory is measured; none for direct reads. */
  workerPid?: number;
}

interface ClientResult {
  status: number;
  bytes: number;
  seconds: number;
  ended: boolean;
  error?: string;
}

export async function main(argv: string[]): Promise<void> {
  const options = parse(argv);
  const log = (line: string) => console.log(`[download] ${line}`);
  const emulator = await startEmulatorProcess();
  const azurite = await startAzurite(0);
  const hosts: FunctionsHost[] = [];
  try {
    const env = {
      PATH: process.env.PATH,
      COSMOS_ENDPOINT: emulator.url,
      COSMOS_KEY: EMULATOR_KEY,
      AzureWebJobsStorage: azurite.connectionString,
      MAX_PART_BYTES: String(options.bytes),
      MAX_REQUEST_BYTES: String(options.bytes + MiB),
      FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(options.bytes + MiB),
      NODE_OPTIONS: RECOMMENDED_NODE_OPTIONS.join(' '),
    };
    const start = (extra: Record<string, string>) =>
      startFunctionsHost({
        appDir: ROOT,
        localSettings: false,
        env: { ...env, ...extra },
        port: 0,
        functionKey: FUNCTION_KEY,
        log: false,
      });
    const managed = await start({});
    hosts.push(managed);
    const blob = await start({ MEDIA_STORE: 'blob', BLOB_CONNECTION_STRING: azurite.connectionString });
    hosts.push(blob);

    log(`seeding ${options.bytes / MiB} MiB through each bridge`);
    const managedResource = await seed(managed, 'big-managed.bin', options.bytes);
    const blobResource = await seed(blob, 'big-blob.bin', options.bytes);
    const targets = await buildTargets(emulator.url, azurite, managed, blob, managedResource, blobResource);

    const fast: Record<string, { rate: number[]; peakMiB: number[]; cpuPerGiB: number[] }> = {};
    for (let run = 0; run < options.runs; run++) {
      for (const target of rotated(targets, run)) {
        if (target.workerPid) await resetPeak(target.workerPid);
        const cpuBefore = target.workerPid ? await cpuSeconds(target.workerPid) : 0;
        const result = await read(target.request());
        if (result.status !== 200 || result.bytes !== options.bytes)
          throw new Error(
            `${target.name}: read ${result.bytes} bytes with status ${result.status} ${result.error ?? ''}`,
          );
        const entry = (fast[target.name] ??= { rate: [], peakMiB: [], cpuPerGiB: [] });
        entry.rate.push(result.bytes / MiB / result.seconds);
        if (target.workerPid) {
          entry.peakMiB.push((await peakRss(target.workerPid)) / MiB);
          const cpu = (await cpuSeconds(target.workerPid)) - cpuBefore;
          entry.cpuPerGiB.push(cpu / (result.bytes / (1024 * MiB)));
        }
        log(
          `run ${run + 1}/${options.runs} ${target.name}: ${(result.bytes / MiB / result.seconds).toFixed(0)} MiB/s`,
        );
      }
    }

    const slow: Record<string, { bytes: number; seconds: number; peakMiB: number }> = {};
    for (const target of targets.filter((t) => t.workerPid)) {
      await resetPeak(target.workerPid!);
      log(`${target.name}: a 1 MiB/s reader for ${options.slowSeconds} s`);
      const result = await read({
        ...target.request(),
        bytesPerSecond: SLOW_BYTES_PER_SECOND,
        maxSeconds: options.slowSeconds,
      });
      slow[target.name] = {
        bytes: result.bytes,
        seconds: result.seconds,
        peakMiB: (await peakRss(target.workerPid!)) / MiB,
      };
    }

    const report = render(options, fast, slow);
    console.log(`\n${report}`);
    await mkdir(OUT_DIR, { recursive: true });
    await writeFile(
      join(OUT_DIR, 'download.json'),
      `${JSON.stringify({ at: new Date().toISOString(), options, fast, slow }, null, 2)}\n`,
    );
    await writeFile(join(OUT_DIR, 'download.md'), `${report}\n`);
    log('wrote .bench-tmp/download.md and .bench-tmp/download.json');
  } finally {
    for (const host of hosts) await host.close();
    await azurite.close();
    await emulator.close();
  }
}

async function buildTargets(
  emulatorUrl: string,
  azurite: Azurite,
  managed: FunctionsHost,
  blob: FunctionsHost,
  managedResource: Record<string, unknown>,
  blobResource: Record<string, unknown>,
): Promise<Target[]> {
  const bridgeHeaders = {
    'x-functions-key': FUNCTION_KEY,
    'x-ms-documentdb-partitionkey': JSON.stringify([DOC.doc]),
  };
  const mediaUrl = (host: FunctionsHost, id: string) =>
    `${host.url}/api/dbs/${DOC.db}/colls/${DOC.coll}/docs/${DOC.doc}/attachments/${encodeURIComponent(id)}/media`;
  const key = loadCosmosSettings({ COSMOS_ENDPOINT: emulatorUrl, COSMOS_KEY: EMULATOR_KEY }).key;
  const mediaId = String(managedResource.media).replace(/^\/media\//, '');
  // The blob's URL is `{account endpoint}/{container}/{name}`; Azurite's endpoint has the account in its path.
  const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
    'attachments',
  );
  const blobName = decodeURIComponent(String(blobResource.media).slice(`${container.url}/`.length));
  const sas = await container.getBlobClient(blobName).generateSasUrl({
    permissions: BlobSASPermissions.parse('r'),
    expiresOn: new Date(Date.now() + 6 * 3_600_000),
  });
  return [
    {
      name: 'bridge, managed media',
      workerPid: managed.worker.pid,
      request: () => ({ url: mediaUrl(managed, String(managedResource.id)), headers: bridgeHeaders }),
    },
    {
      name: 'emulator, direct',
      request: () => ({
        url: `${emulatorUrl}/media/${mediaId}`,
        headers: signedHeaders(key, {
          verb: 'GET',
          resourceType: 'media',
          resourceLink: mediaResourceLink(mediaId),
        }),
      }),
    },
    {
      name: 'bridge, blob media',
      workerPid: blob.worker.pid,
      request: () => ({ url: mediaUrl(blob, String(blobResource.id)), headers: bridgeHeaders }),
    },
    { name: 'Azurite, direct (SAS)', request: () => ({ url: sas, headers: {} }) },
  ];
}

/** Uploads `bytes` of pseudo-random data as raw media with a Slug, through the bridge. */
async function seed(host: FunctionsHost, id: string, bytes: number): Promise<Record<string, unknown>> {
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  const body = Readable.from(
    (function* () {
      for (let sent = 0; sent < bytes; sent += MiB) {
        const chunk = Buffer.from(block.subarray(0, Math.min(MiB, bytes - sent)));
        chunk.writeUInt32LE(sent / MiB, 0);
        yield chunk;
      }
    })(),
  );
  const response = await request(
    `${host.url}/api/dbs/${DOC.db}/colls/${DOC.coll}/docs/${DOC.doc}/attachments`,
    {
      method: 'POST',
      headers: {
        'x-functions-key': FUNCTION_KEY,
        'x-ms-documentdb-partitionkey': JSON.stringify([DOC.doc]),
        'content-type': 'application/octet-stream',
        'content-length': String(bytes),
        slug: id,
      },
      body,
    },
  );
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`seeding ${id}: ${response.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function read(job: {
  url: string;
  headers: Record<string, string>;
  bytesPerSecond?: number;
  maxSeconds?: number;
}): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as ClientResult);
      } catch {
        reject(new Error(`download client printed no result: ${out}`));
      }
    });
  });
}

/** Resets VmHWM (Linux: writing 5 to clear_refs), so the next reading is this measurement's peak. */
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** User + system CPU time of a process so far (Linux reports clock ticks of 1/100 s). */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]);
  return kib * 1024;
}

function rotated<T>(list: readonly T[], by: number): T[] {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function render(
  options: Options,
  fast: Record<string, { rate: number[]; peakMiB: number[]; cpuPerGiB: number[] }>,
  slow: Record<string, { bytes: number; seconds: number; peakMiB: number }>,
): string {
  const rate = (name: string) => median(fast[name]!.rate);
  const lines = [
    `### Downloads: ${options.bytes / MiB} MiB, ${options.runs} run${options.runs > 1 ? 's' : ''} per figure (median)`,
    '',
    '| path | MiB/s | vs direct | bridge CPU s/GiB | bridge peak RSS, fast reader | bridge peak RSS, 1 MiB/s reader |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  const pairs: [string, string][] = [
    ['bridge, managed media', 'emulator, direct'],
    ['bridge, blob media', 'Azurite, direct (SAS)'],
  ];
  for (const [bridge, direct] of pairs) {
    lines.push(
      `| ${bridge} | ${rate(bridge).toFixed(0)} | ${(rate(bridge) / rate(direct)).toFixed(2)}x | ${median(fast[bridge]!.cpuPerGiB).toFixed(1)} | ${median(fast[bridge]!.peakMiB).toFixed(0)} MiB | ${slow[bridge]!.peakMiB.toFixed(0)} MiB (${(slow[bridge]!.bytes / MiB).toFixed(0)} MiB read in ${slow[bridge]!.seconds.toFixed(0)} s) |`,
      `| ${direct} | ${rate(direct).toFixed(0)} | 1.00x | – | – | – |`,
    );
  }
  const verdicts = pairs.map(([bridge]) => {
    const raised = slow[bridge]!.peakMiB - median(fast[bridge]!.peakMiB);
    return `- ${bridge}: the slow reader ${raised <= 16 ? 'did not raise' : 'RAISED'} the peak (${raised >= 0 ? '+' : ''}${raised.toFixed(0)} MiB against the fast reader).`;
  });
  return [...lines, '', ...verdicts].join('\n');
}

/** The emulator in a process of its own, media kept on disk (a download needs the bytes). */
async function startEmulatorProcess(): Promise<{ url: string; close(): Promise<void> }> {
  const child = spawn(process.execPath, [EMULATOR], {
    env: { ...process.env, EMULATOR_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the emulator exited (${code}): ${out}`)));
  });
  child.stdout.resume();
  return {
    url,
    async close() {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
