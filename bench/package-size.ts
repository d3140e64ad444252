/**
 * `npm run bench:package`: the bundled package (`npm run package`) against the unbundled one that
 * `func azure functionapp publish` ships today (dist/ plus what `npm ci --omit=dev` installs): zip
 * size, files, and in fresh processes the time to load the entry (with a stand-in for the worker's
 * `@azure/functions-core`) and to answer a first upload through the embedded emulator. Medians of
 * `--runs` (default 15), the two packages alternating so machine noise falls on both alike.
 * Not part of `npm test`: timings belong in a benchmark.
 */
import { execFileSync } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, packageIntoTemp, zipFolder } from '../scripts/package.js';
import { runProbe, type ProbeResult } from '../scripts/package-probe.js';
import { startEmulator } from '../src/emulator/server.js';
import { describeMachine, loadAverage, revision } from './machine.js';
import { summarize, type Summary } from './stats.js';

interface Candidate {
  name: string;
  main: string;
  zipBytes: number;
  files: number;
  unpackedBytes: number;
  loadMs: number[];
  firstAnswerMs: number[];
  rssMiB: number[];
}

/** What `func azure functionapp publish` ships after `npm run build && npm prune --omit=dev`. */
async function unbundledPackage(folder: string): Promise<string> {
  for (const path of ['host.json', 'package.json', 'package-lock.json', 'dist/functions', 'dist/src']) {
    await cp(join(REPO_ROOT, path), join(folder, path), { recursive: true });
  }
  execFileSync(
    'npm',
    ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'],
    {
      cwd: folder,
      stdio: 'ignore',
    },
  );
  return join(folder, 'dist', 'functions', 'index.js');
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(2);
const ms = (summary: Summary) =>
  `${summary.median.toFixed(0)} (${summary.min.toFixed(0)}-${summary.max.toFixed(0)})`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
  const runs = Number(values.runs);
  const emulator = await startEmulator({ port: 0 });
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'bench' }, '["bench"]');
  const unbundledDir = await mkdtemp(join(tmpdir(), 'bridge-unbundled-'));
  const bundled = await packageIntoTemp();
  try {
    const unbundledMain = await unbundledPackage(unbundledDir);
    const unbundledZip = await zipFolder(unbundledDir);
    const bundledZip = await zipFolder(bundled.root);
    const candidates: Candidate[] = [
      {
        name: 'bundled (`npm run package`)',
        main: bundled.main,
        zipBytes: bundledZip.zip.byteLength,
        files: bundledZip.files,
        unpackedBytes: bundledZip.bytes,
        loadMs: [],
        firstAnswerMs: [],
        rssMiB: [],
      },
      {
        name: 'unbundled (dist/ + production node_modules)',
        main: unbundledMain,
        zipBytes: unbundledZip.zip.byteLength,
        files: unbundledZip.files,
        unpackedBytes: unbundledZip.bytes,
        loadMs: [],
        firstAnswerMs: [],
        rssMiB: [],
      },
    ];
    const env = { COSMOS_CONNECTION_STRING: `AccountEndpoint=${emulator.url}/;AccountKey=${emulator.key};` };
    const boundary = 'bench';
    for (let run = 0; run < runs; run += 1) {
      for (const candidate of run % 2 === 0 ? candidates : [...candidates].reverse()) {
        const filename = `run-${run}-${candidate.files}.txt`;
        const result: ProbeResult = await runProbe({
          main: candidate.main,
          env,
          request: {
            functionName: 'createAttachments',
            url: 'http://localhost:7071/api/dbs/demo/colls/items/docs/bench/attachments',
            headers: {
              'content-type': `multipart/form-data; boundary=${boundary}`,
              'x-ms-documentdb-partitionkey': '["bench"]',
            },
            body: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`,
          },
        });
        if (result.error || result.answer?.status !== 201) {
          throw new Error(
            `${candidate.name}: ${result.error ?? `answered ${result.answer?.status}`}\n${result.output}`,
          );
        }
        candidate.loadMs.push(result.loadMs);
        candidate.firstAnswerMs.push(result.answer.ms);
        candidate.rssMiB.push(result.rssAfterAnswerMiB ?? Number.NaN);
      }
    }
    const machine = describeMachine();
    console.log(`Package size and cold start, ${runs} runs each, ${revision()}, ${new Date().toISOString()}`);
    console.log(`Node ${machine.node}, ${machine.cpu}, ${machine.cores} cores, ${machine.os}`);
    console.log(
      `Load average at start ${machine.loadAverageAtStart.join(' ')}, at end ${loadAverage().join(' ')}\n`,
    );
    console.log(
      '| package | zip MiB | files | unpacked MiB | load entry, ms | load to first answer, ms | RSS after first answer, MiB |',
    );
    console.log('| --- | --: | --: | --: | --: | --: | --: |');
    for (const c of candidates) {
      const rss = summarize(c.rssMiB).median.toFixed(1);
      console.log(
        `| ${c.name} | ${mib(c.zipBytes)} | ${c.files} | ${mib(c.unpackedBytes)} | ${ms(summarize(c.loadMs))} | ${ms(summarize(c.firstAnswerMs))} | ${rss} |`,
      );
    }
    console.log(
      '\nMedians, (min-max) in brackets. Load: `import()` of the entry; first answer: from there to a 201 for a small upload.',
    );
  } finally {
    await emulator.close();
    await rm(unbundledDir, { recursive: true, force: true });
    await rm(join(bundled.root, '..'), { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
