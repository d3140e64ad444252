import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

type Frame = CpuProfile['nodes'][number]['callFrame'];

/** What a main-thread sample was doing, coarsely (first rule that matches). */
const CPU_PROF_CATEGORIES: [string, (frame: Frame) => boolean][] = [
  ['SHA-256', (f) => f.url.includes('internal/crypto/hash')],
  ['delimiter search (streamsearch)', (f) => f.url.includes('streamsearch/')],
  ['busboy', (f) => f.url.includes('busboy/')],
  [
    'socket writes (the call, kernel included)',
    (f) => !f.url && /^(writev|writeBuffer|write\w*String)$/.test(f.functionName),
  ],
  ['garbage collector (main thread)', (f) => f.functionName === '(garbage collector)'],
  ['(program): native code outside JS, socket reads', (f) => f.functionName === '(program)'],
  [
    'stream machinery (node streams, web streams, ticks, events)',
    (f) =>
      /internal\/(streams|webstreams)\/|^node:events|internal\/process\/task_queues|^events$/.test(f.url) ||
      /^(nextTick|runMicrotasks|processTicksAndRejections|emit)$/.test(f.functionName),
  ],
  ['node:http', (f) => /_http_|internal\/http/.test(f.url)],
  ['undici', (f) => f.url.includes('undici')],
  ['@azure/functions', (f) => f.url.includes('@azure/functions')],
  ['the bridge (dist/src)', (f) => f.url.includes('/dist/src/')],
  ['module loading and compiling', (f) => /modules\/|bootstrap\/realm|cjs-module-lexer/.test(f.url)],
];

/**
 * Self time per function and per category across the `.cpuprofile` files in `dir` whose name starts
 * with `prefix`: where a process's main thread went. Idle time is left out of the percentages.
 */
export async function summarizeCpuProfiles(dir: string, prefix: string, top = 15): Promise<string> {
  const files = (await readdir(dir)).filter(
    (name) => name.startsWith(prefix) && name.endsWith('.cpuprofile'),
  );
  const selfMicros = new Map<string, number>();
  const categories = new Map<string, number>();
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    profile.samples.forEach((id, i) => {
      const frame = frames.get(id);
      if (!frame || frame.functionName === '(idle)') return;
      const micros = profile.timeDeltas[i] ?? 0;
      const name = frameName(frame);
      selfMicros.set(name, (selfMicros.get(name) ?? 0) + micros);
      const category = CPU_PROF_CATEGORIES.find(([, match]) => match(frame))?.[0] ?? 'other JavaScript';
      categories.set(category, (categories.get(category) ?? 0) + micros);
    });
  }
  const busy = [...selfMicros.values()].reduce((sum, value) => sum + value, 0);
  const line = (name: string, micros: number) =>
    `${(micros / 1000).toFixed(0).padStart(8)} ms ${((100 * micros) / busy).toFixed(1).padStart(5)} %  ${name}`;
  return [
    `--cpu-prof, main thread: ${files.length} profile(s), ${(busy / 1000).toFixed(0)} ms busy`,
    'by category:',
    ...[...categories].sort((a, b) => b[1] - a[1]).map(([name, micros]) => line(name, micros)),
    `top ${top} functions (self time):`,
    ...[...selfMicros]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, micros]) => line(name, micros)),
  ].join('\n');
}

function frameName({ functionName, url, lineNumber }: Frame): string {
  if (!url) return functionName || '(anonymous)';
  const where = url
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\//, '')
    .replace(/^node:/, '');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
}

/** What a perf sample (any thread, kernel included) was doing, coarsely (first rule that matches). */
const PERF_CATEGORIES: [string, (dso: string, symbol: string) => boolean][] = [
  ['kernel (socket reads and writes, page faults, scheduling)', (dso) => dso === '[kernel.kallsyms]'],
  ['SHA-256 (OpenSSL)', (_, s) => /sha256/i.test(s)],
  [
    'garbage collector (all threads)',
    (_, s) =>
      /v8::internal::.*(Mark|Scaveng|Sweep|Heap|GC|Evacuat|Compact|MemoryChunk|SizeFromMap|BodyDescriptor|Visitor|RememberedSet|Slot|ArrayBufferSweeper)/.test(
        s,
      ),
  ],
  ['memcpy / memmove', (_, s) => /mem(move|cpy)/.test(s)],
  ['malloc / free', (_, s) => /(malloc|free|_int_|calloc|realloc|tcache)/.test(s)],
  ['delimiter search (streamsearch)', (_, s) => /sbmh|streamsearch/.test(s)],
  [
    'JavaScript (JIT-compiled)',
    (dso, s) => dso.startsWith('perf-') || dso.startsWith('[JIT]') || /^(LazyCompile|Function|JS):/.test(s),
  ],
  ['V8 builtins (interpreter, inline caches, promises)', (_, s) => s.startsWith('Builtins_')],
  ['V8 runtime and node (C++)', (dso) => dso === 'node'],
];

/**
 * `perf report` of `file` by category and top symbols: every thread of the process (V8's concurrent
 * marking and sweeping included) and the kernel's share, which --cpu-prof does not see.
 */
export async function summarizePerf(file: string, top = 12): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'perf',
    [
      'report',
      '-i',
      file,
      '--stdio',
      '--no-children',
      '--sort',
      'dso,sym',
      '-g',
      'none',
      '--percent-limit',
      '0',
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  const rows: { percent: number; dso: string; symbol: string }[] = [];
  for (const line of stdout.split('\n')) {
    const match = /^\s+([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)$/.exec(line);
    if (match) rows.push({ percent: Number(match[1]), dso: match[2]!, symbol: match[3]!.trim() });
  }
  const categories = new Map<string, number>();
  for (const { percent, dso, symbol } of rows) {
    const category = PERF_CATEGORIES.find(([, match]) => match(dso, symbol))?.[0] ?? 'other';
    categories.set(category, (categories.get(category) ?? 0) + percent);
  }
  const line = (name: string, percent: number) => `${percent.toFixed(1).padStart(6)} %  ${name}`;
  return [
    'perf (cpu-clock, all threads):',
    'by category:',
    ...[...categories].sort((a, b) => b[1] - a[1]).map(([name, percent]) => line(name, percent)),
    `top ${top} symbols:`,
    ...rows
      .slice(0, top)
      .map(({ percent, dso, symbol }) => line(`${symbol.slice(0, 110)} (${dso})`, percent)),
  ].join('\n');
}
