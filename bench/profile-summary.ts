import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time per function, across every profile in `dir`: where the bridge's CPU went. Idle time is
 * left out of the percentages, so they add up to the time the bridge was busy.
 */
export async function summarizeProfiles(dir: string, top = 25): Promise<string> {
  const files = (await readdir(dir)).filter((name) => name.endsWith('.cpuprofile'));
  const selfMicros = new Map<string, number>();
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const names = new Map(profile.nodes.map((node) => [node.id, frameName(node.callFrame)]));
    profile.samples.forEach((id, i) => {
      const name = names.get(id) ?? '?';
      selfMicros.set(name, (selfMicros.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0));
    });
  }
  selfMicros.delete('(idle)');
  const busy = [...selfMicros.values()].reduce((sum, value) => sum + value, 0);
  const rows = [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [
    `${files.length} profile(s), ${(busy / 1000).toFixed(0)} ms busy; self time:`,
    ...rows.map(
      ([name, micros]) =>
        `${(micros / 1000).toFixed(0).padStart(8)} ms ${((100 * micros) / busy).toFixed(1).padStart(5)}%  ${name}`,
    ),
  ].join('\n');
}

function frameName({ functionName, url, lineNumber }: CpuProfile['nodes'][number]['callFrame']): string {
  if (!url) return functionName || '(anonymous)';
  const where = url
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\//, '')
    .replace(/^node:/, '');
  return `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
}
