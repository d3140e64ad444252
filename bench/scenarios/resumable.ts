// `npm run bench:resumable [-- --long] [-- --blob]`: resumable (tus) uploads against one multipart
// upload of the same file, through the real app in the local Functions host, on the embedded emulator
// (media discarded after hashing) and Azurite. Self-contained: it starts and stops all it needs.
//
// - 1 GiB in 8 MiB tus chunks (tus-js-client) against one multipart upload of the same 1 GiB file:
//   throughput of each, their ratio, and the app's peak RSS (the worker process) during each.
// - `--long`: 2 GiB (`--mib N` for less) through a link that drops every 30 s, which must still
//   complete byte-exact: the attachment's SHA-256 equals the file's, and so does an independent hash
//   of the stored bytes (managed: the emulator's own hash of the media it took; blob: the blob read
//   back from Azurite).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { BlobClient } from '@azure/storage-blob';
import { Upload } from 'tus-js-client';
import { startAzurite } from '../../src/devhost/azurite.js';
import { seedDemo, DEMO } from '../../src/emulator/seed.js';
import { startEmulator } from '../../src/emulator/server.js';
import { startFunctionsHost, type FunctionsHost } from '../../src/functions-host/host.js';
import { summarizeCpuProfiles } from '../profile-summary.js';
import { startCuttingProxy } from '../../test/helpers/cutting-proxy.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MiB = 1024 * 1024;
const KEY = 'bench-function-key-0123456789';
const CHUNK = 8 * MiB;

interface Attachment {
  sha256?: string;
  size?: number;
  media?: string;
}

interface Measured {
  seconds: number;
  mibPerSecond: number;
  peakRssMiB: number;
  /** CPU seconds (user + system) per GiB moved: the app's worker, and Azurite's processes. */
  workerCpuPerGiB: number;
  azuriteCpuPerGiB: number;
  /** This process: the host's part, the emulator and the client. */
  hostCpuPerGiB: number;
}

async function main(): Promise<void> {
  const long = process.argv.includes('--long');
  const blob = process.argv.includes('--blob');
  // `--cpu-prof`: the worker runs under V8's profiler for the tus upload alone (no multipart run);
  // profiles and a summary of self time in .bench-tmp/profiles-resumable.
  const profileDir = process.argv.includes('--cpu-prof')
    ? join(ROOT, '.bench-tmp/profiles-resumable')
    : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'bench-resumable-'));
  const emulator = await startEmulator({ port: 0, discardMedia: true });
  seedDemo(emulator);
  const azurite = await startAzurite(0);
  const sizeArg = process.argv.indexOf('--mib');
  const size = (sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : long ? 2048 : 1024) * MiB;
  let host: FunctionsHost | undefined;
  try {
    host = await startFunctionsHost({
      appDir: ROOT,
      localSettings: false,
      port: 0,
      functionKey: KEY,
      log: false,
      workerNodeArgs: [
        '--max-semi-space-size=1',
        ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
      ],
      env: {
        PATH: process.env.PATH,
        COSMOS_ENDPOINT: emulator.url,
        COSMOS_KEY: emulator.key,
        AzureWebJobsStorage: azurite.connectionString,
        ...(blob ? { MEDIA_STORE: 'blob', BLOB_CONNECTION_STRING: azurite.connectionString } : {}),
        // One multipart request of the whole file, for the comparison.
        MAX_PART_BYTES: String(size + MiB),
        MAX_REQUEST_BYTES: String(size + MiB),
        FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(size + 2 * MiB),
      },
    });
    const file = join(dir, 'file.bin');
    const digest = await writeFile(file, size);
    console.log(`${size / MiB} MiB file, ${blob ? 'blob' : 'managed'} media, machine load ${loadAverage()}`);
    if (long) {
      const proxy = await startCuttingProxy({ target: host.url, cutEveryMs: 30_000 });
      try {
        let stored: Attachment | undefined;
        const run = await measure(host, async () => {
          stored = await tus(file, proxy.url, 'flaky.bin', digest);
          return stored.size!;
        });
        const media = String(stored!.media);
        const independent = blob
          ? await blobHash(azurite.connectionString, media)
          : emulator.store.readMedia(media.replace(/^\/media\//, '')).media.sha256;
        if (independent !== digest) throw new Error('the stored bytes are not the file');
        console.log(
          `${size / MiB} MiB over a link dropping every 30 s: complete and byte-exact in ${run.seconds.toFixed(0)} s ` +
            `(${run.mibPerSecond.toFixed(1)} MiB/s, ${proxy.cuts} drops, peak RSS ${run.peakRssMiB.toFixed(0)} MiB)`,
        );
      } finally {
        await proxy.close();
      }
      return;
    }
    const multipartRun = profileDir ? undefined : await measure(host, () => multipart(file, host!.url, size));
    const tusRun = await measure(
      host,
      async () => (await tus(file, host!.url, 'resumable.bin', digest)).size!,
    );
    const line = (name: string, run: Measured) =>
      `${name.padEnd(26)} ${run.seconds.toFixed(1).padStart(6)} s ${run.mibPerSecond.toFixed(1).padStart(7)} MiB/s  peak RSS ${run.peakRssMiB.toFixed(0)} MiB` +
      `  CPU per GiB: worker ${run.workerCpuPerGiB.toFixed(1)} s, Azurite ${run.azuriteCpuPerGiB.toFixed(1)} s, ` +
      `host+emulator+client ${run.hostCpuPerGiB.toFixed(1)} s`;
    if (multipartRun) console.log(line('multipart, one request', multipartRun));
    console.log(line(`tus, ${CHUNK / MiB} MiB chunks`, tusRun));
    if (multipartRun) {
      console.log(
        `throughput ratio tus / multipart: ${(tusRun.mibPerSecond / multipartRun.mibPerSecond).toFixed(2)}`,
      );
    }
    // Where the tus time went: the app's own request lines (method, path, ms).
    const requests = host.logs
      .map((record) => /^\{"message":"request".*\}$/.exec(record.message)?.[0])
      .filter((line): line is string => line !== undefined)
      .map((line) => JSON.parse(line) as { method: string; path: string; ms: number });
    const tusRequests = requests.filter((r) => r.path.includes('/uploads'));
    const patches = tusRequests.filter((r) => r.method === 'PATCH');
    const total = (list: { ms: number }[]) => list.reduce((sum, r) => sum + r.ms, 0);
    console.log(
      `tus requests: ${tusRequests.length}, in the app ${(total(tusRequests) / 1000).toFixed(1)} s, of which ` +
        `PATCH ${(total(patches) / 1000).toFixed(1)} s, the final PATCH (with completion) ${((patches.at(-1)?.ms ?? 0) / 1000).toFixed(1)} s`,
    );
  } finally {
    await host?.close();
    await azurite.close();
    await emulator.close();
    await rm(dir, { recursive: true, force: true });
  }
  if (profileDir) console.log(await summarizeCpuProfiles(profileDir, 'CPU', 40));
}

/** Runs one upload while sampling the app's worker RSS; throughput over the whole run. */
async function measure(host: FunctionsHost, run: () => Promise<number>): Promise<Measured> {
  let peak = 0;
  const sample = async () => {
    const status = await readFile(`/proc/${host.worker.pid}/status`, 'utf8').catch(() => '');
    const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kib / 1024);
  };
  const timer = setInterval(() => void sample(), 50);
  const azurite = await azuritePids(host.worker.pid);
  const workerBefore = await cpuSeconds([host.worker.pid]);
  const azuriteBefore = await cpuSeconds(azurite);
  const hostBefore = process.cpuUsage();
  const started = performance.now();
  try {
    const bytes = await run();
    const own = process.cpuUsage(hostBefore);
    const seconds = (performance.now() - started) / 1000;
    await sample();
    const gib = bytes / (1024 * MiB);
    return {
      seconds,
      mibPerSecond: bytes / MiB / seconds,
      peakRssMiB: peak,
      workerCpuPerGiB: ((await cpuSeconds([host.worker.pid])) - workerBefore) / gib,
      azuriteCpuPerGiB: ((await cpuSeconds(azurite)) - azuriteBefore) / gib,
      hostCpuPerGiB: (own.user + own.system) / 1e6 / gib,
    };
  } finally {
    clearInterval(timer);
  }
}

/** CPU seconds (utime + stime, /proc/<pid>/stat fields 14 and 15) the processes used so far. */
async function cpuSeconds(pids: number[]): Promise<number> {
  const ticksPerSecond = 100; // USER_HZ on Linux
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  }
  return ticks / ticksPerSecond;
}

/** This process's children other than the app's worker: Azurite's Blob and Queue services. */
async function azuritePids(worker: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${process.pid}/task`);
  const children = await Promise.all(
    tasks.map((task) => readFile(`/proc/${process.pid}/task/${task}/children`, 'utf8').catch(() => '')),
  );
  return children
    .join(' ')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== worker);
}

/** One multipart/form-data upload of the whole file, streamed from disk. */
function multipart(file: string, base: string, size: number): Promise<number> {
  const boundary = `bench${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="multipart.bin"\r\n` +
      `Content-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/api/dbs/${DEMO.db}/colls/${DEMO.coll}/docs/${DEMO.doc}/attachments`,
      {
        method: 'POST',
        headers: {
          'x-functions-key': KEY,
          'x-ms-documentdb-partitionkey': JSON.stringify([DEMO.doc]),
          'content-type': `multipart/form-data; boundary=${boundary}`,
          'content-length': String(head.length + size + tail.length),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          res.statusCode === 201
            ? resolve(size)
            : reject(new Error(`multipart answered ${res.statusCode}: ${Buffer.concat(chunks).toString()}`)),
        );
      },
    );
    req.on('error', reject);
    req.write(head);
    const stream = createReadStream(file);
    stream.pipe(req, { end: false });
    stream.on('end', () => req.end(tail));
    stream.on('error', reject);
  });
}

/** A tus upload of the whole file in CHUNK-sized PATCHes; checks the SHA-256 the bridge reports. */
function tus(file: string, base: string, filename: string, digest: string): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(createReadStream(file), {
      endpoint: `${base}/api/dbs/${DEMO.db}/colls/${DEMO.coll}/docs/${DEMO.doc}/attachments/uploads`,
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      headers: { 'x-functions-key': KEY, 'x-ms-documentdb-partitionkey': JSON.stringify([DEMO.doc]) },
      metadata: { filename, filetype: 'application/octet-stream', uniqueId: 'true' },
      onError: reject,
      // The final PATCH may answer 'completing' (the attachment takes longer than the inline wait,
      // or the link dropped under it): GET answers 202 until the attachment exists, then 200 with it.
      onSuccess: () => {
        const url = new URL(new URL(upload.url!).pathname, base);
        attachmentOf(url)
          .then((attachment) => {
            if (attachment.sha256 !== digest) throw new Error('the stored upload is not byte-exact');
            resolve(attachment);
          })
          .catch(reject);
      },
    });
    upload.start();
  });
}

/** Asks `GET /api/uploads/{id}` until the upload is complete (every second, up to 10 minutes). */
async function attachmentOf(url: URL): Promise<Attachment> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    const response = await fetch(url, { headers: { 'x-functions-key': KEY } });
    const body = (await response.json()) as { attachment?: Attachment };
    if (response.status === 200 && body.attachment) return body.attachment;
    if (response.status !== 202 || Date.now() > deadline) {
      throw new Error(`the upload did not complete: ${response.status} ${JSON.stringify(body)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** SHA-256 of a blob (blob mode's media URL) read back from Azurite. */
async function blobHash(connectionString: string, media: string): Promise<string> {
  // Azurite's URLs are path-style: /{account}/{container}/{blob}.
  const [, , container, ...name] = new URL(media).pathname.split('/');
  const blob = new BlobClient(connectionString, container!, decodeURIComponent(name.join('/')));
  const hash = createHash('sha256');
  for await (const chunk of (await blob.download()).readableStreamBody!) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes `size` pseudo-random bytes (incompressible) and returns their SHA-256. */
async function writeFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const block = randomBytes(MiB);
  function* bytes() {
    for (let written = 0; written < size; written += MiB) {
      // A different block each time, cheaply: the first 8 bytes carry its index.
      const copy = Buffer.from(block);
      copy.writeDoubleBE(written, 0);
      hash.update(copy);
      yield copy;
    }
  }
  await pipeline(bytes(), createWriteStream(path));
  return hash.digest('hex');
}

function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
