// The load generator: its own process, so its CPU is never the bridge's. Runs one job given as JSON
// in argv[2] and prints the result as one JSON line.
import { request as httpRequest, Agent, type ClientRequest } from 'node:http';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { fileChunks, fileSha256, multipartBody } from './bodies.js';
import {
  CLIENT_READY,
  type ConcurrentUploadsJob,
  type Job,
  type JobResult,
  type SmallRequestsJob,
  type SmallUploadsJob,
  type Target,
  type TrickleJob,
  type TrickleResult,
  type UploadJob,
} from './jobs.js';
import { ATTACHMENTS_PATH, BRIDGE_ATTACHMENTS_PATH, PARTITION_KEY, signedCreateHeaders } from './signing.js';

/** Between one slow caller's start and the next's. */
const TRICKLE_STAGGER_MS = 80;
/** No request may hang the benchmark. */
const REQUEST_TIMEOUT_MS = 120_000;

interface Answer {
  status: number;
  body: string;
}

type RequestBody = string | Buffer | Readable;

function authHeaders(target: Target): Record<string, string> {
  return target.kind === 'bridge'
    ? { 'x-functions-key': target.functionKey, 'x-ms-documentdb-partitionkey': PARTITION_KEY }
    : signedCreateHeaders();
}

async function post(
  pool: Pool,
  target: Target,
  headers: Record<string, string>,
  body: RequestBody,
): Promise<Answer> {
  const response = await pool.request({
    method: 'POST',
    path: target.kind === 'sink' ? ATTACHMENTS_PATH : BRIDGE_ATTACHMENTS_PATH,
    headers: { ...authHeaders(target), ...headers },
    body,
    headersTimeout: REQUEST_TIMEOUT_MS,
    bodyTimeout: REQUEST_TIMEOUT_MS,
  });
  return { status: response.statusCode, body: await response.body.text() };
}

/** One file: multipart or raw media with a Slug, as the target takes it. */
function uploadRequest(
  target: Target,
  bytes: number,
  id: string,
): { headers: Record<string, string>; body: Readable } {
  // Content-Length given, as browsers and mobile SDKs send files; byte mode, so chunks go out as they are.
  if (target.kind === 'bridge' && target.form === 'multipart') {
    const form = multipartBody(bytes, id);
    return {
      headers: { 'content-type': form.contentType, 'content-length': String(form.length) },
      body: Readable.from(form.chunks(), { objectMode: false }),
    };
  }
  return {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes), slug: id },
    body: Readable.from(fileChunks(bytes), { objectMode: false }),
  };
}

function expectCreated(answer: Answer, what: string): void {
  if (answer.status !== 201) throw new Error(`${what}: ${answer.status} ${answer.body.slice(0, 300)}`);
}

async function measured(run: () => Promise<number[]>, bytes: number): Promise<JobResult> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const latenciesMs = await run();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { seconds, bytes, latenciesMs, clientCpuSeconds: (used.user + used.system) / 1e6 };
}

async function upload(job: UploadJob): Promise<JobResult> {
  // Computed before the clock starts: the bridge's multipart answer must name exactly these bytes.
  const checked = job.target.kind === 'bridge' && job.target.form === 'multipart';
  const expected = checked ? fileSha256(job.bytes) : undefined;
  const pool = new Pool(job.target.origin, { connections: 1 });
  try {
    return await measured(async () => {
      const started = performance.now();
      const { headers, body } = uploadRequest(job.target, job.bytes, job.id);
      const answer = await post(pool, job.target, headers, body);
      expectCreated(answer, `upload ${job.id}`);
      if (expected !== undefined) {
        const stored = (JSON.parse(answer.body) as { attachments: { size: number; sha256: string }[] })
          .attachments[0];
        if (stored?.size !== job.bytes || stored.sha256 !== expected) {
          throw new Error(`upload ${job.id}: the bridge stored other bytes: ${answer.body.slice(0, 300)}`);
        }
      }
      return [performance.now() - started];
    }, job.bytes);
  } finally {
    await pool.close();
  }
}

/** `concurrency` workers, each making its requests one after another over its own connection. */
async function workers(
  concurrency: number,
  perWorker: number,
  request: (worker: number, index: number) => Promise<void>,
): Promise<number[]> {
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (let index = 0; index < perWorker; index++) {
        const started = performance.now();
        await request(worker, index);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

async function concurrentUploads(job: ConcurrentUploadsJob): Promise<JobResult> {
  const pool = new Pool(job.target.origin, { connections: job.concurrency });
  try {
    return await measured(
      () =>
        workers(job.concurrency, job.perWorker, async (worker, index) => {
          const id = `${job.idPrefix}-${worker}-${index}`;
          const { headers, body } = uploadRequest(job.target, job.bytes, id);
          expectCreated(await post(pool, job.target, headers, body), `upload ${id}`);
        }),
      job.bytes * job.concurrency * job.perWorker,
    );
  } finally {
    await pool.close();
  }
}

/** JSON metadata attachments: the smallest create there is, so per-request overhead is all that is measured. */
async function smallRequests(job: SmallRequestsJob): Promise<JobResult> {
  const pool = new Pool(job.target.origin, { connections: job.concurrency });
  const perWorker = Math.ceil(job.requests / job.concurrency);
  try {
    return await measured(
      () =>
        workers(job.concurrency, perWorker, async (worker, index) => {
          const id = `${job.idPrefix}-${worker}-${index}`;
          const body = JSON.stringify({
            id,
            contentType: 'image/jpeg',
            media: `https://cdn.example.com/photos/${id}.jpg`,
          });
          const answer = await post(pool, job.target, { 'content-type': 'application/json' }, body);
          expectCreated(answer, `metadata ${id}`);
        }),
      0,
    );
  } finally {
    await pool.close();
  }
}

/** Small files one after another: each as one buffer, so the client's own cost stays low. */
async function smallUploads(job: SmallUploadsJob): Promise<JobResult> {
  const pool = new Pool(job.target.origin, { connections: 1 });
  try {
    return await measured(
      () =>
        workers(1, job.requests, async (_, index) => {
          const id = `${job.idPrefix}-${index}`;
          const { headers, body } = uploadRequest(job.target, job.bytes, id);
          const whole = Buffer.concat(await body.toArray());
          expectCreated(await post(pool, job.target, headers, whole), `upload ${id}`);
        }),
      job.bytes * job.requests,
    );
  } finally {
    await pool.close();
  }
}

/** Slow callers: each sends its head, then a byte a second; an answered one is replaced at once. */
async function trickle(job: TrickleJob): Promise<TrickleResult> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const target = new URL(job.target.origin);
  const result: TrickleResult = { started: 0, answers: {} };
  const live = new Set<ClientRequest>();
  let stopping = false;
  const start = () => {
    if (stopping) return;
    const id = `${job.idPrefix}-${result.started++}`;
    const form = multipartBody(1024 * 1024, id);
    const [head] = form.chunks();
    const req = httpRequest({
      agent,
      host: target.hostname,
      port: target.port,
      method: 'POST',
      path: BRIDGE_ATTACHMENTS_PATH,
      headers: {
        ...authHeaders(job.target),
        'content-type': form.contentType,
        'content-length': String(form.length),
      },
    });
    live.add(req);
    req.write(head);
    const timer = setInterval(() => req.write(Buffer.from([0x61])), 1000);
    const done = () => {
      clearInterval(timer);
      if (live.delete(req)) start();
    };
    req.on('response', (res) => {
      result.answers[res.statusCode ?? 0] = (result.answers[res.statusCode ?? 0] ?? 0) + 1;
      res.resume();
      res.once('end', done);
      req.destroy();
      done();
    });
    req.on('error', done);
    req.on('close', done);
  };
  // Staggered over a few seconds, as slow callers arrive: not all cut off (and replaced) at one moment.
  for (let i = 0; i < job.count; i++) {
    start();
    await new Promise((resolve) => setTimeout(resolve, TRICKLE_STAGGER_MS));
  }
  process.stderr.write(`${CLIENT_READY}\n`);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, job.maxSeconds * 1000);
    process.once('SIGTERM', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  stopping = true;
  for (const req of live) req.destroy();
  agent.destroy();
  return result;
}

function run(job: Job): Promise<unknown> {
  switch (job.type) {
    case 'upload':
      return upload(job);
    case 'concurrent-uploads':
      return concurrentUploads(job);
    case 'small-requests':
      return smallRequests(job);
    case 'small-uploads':
      return smallUploads(job);
    case 'trickle':
      return trickle(job);
  }
}

run(JSON.parse(process.argv[2] ?? '') as Job).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
