// The benchmark measures the bridge as installed, and two install-time patches (patches/) change its
// cost per byte. patch-package applies them only when node_modules is installed: a node_modules that
// predates a patch runs unpatched code and gives other figures without a word. So each build measured
// is checked first: every line a patch adds must be in the file it patches.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function assertPatched(root: string, name = 'this checkout'): Promise<void> {
  const dir = join(root, 'patches');
  for (const patch of (await readdir(dir)).filter((file) => file.endsWith('.patch'))) {
    let target: string | undefined;
    const added = new Map<string, string[]>();
    for (const line of (await readFile(join(dir, patch), 'utf8')).split('\n')) {
      if (line.startsWith('+++ b/')) {
        target = line.slice('+++ b/'.length);
        added.set(target, []);
      } else if (target && line.startsWith('+') && line.trim().length > 1) {
        added.get(target)!.push(line.slice(1).trim());
      }
    }
    for (const [file, lines] of added) {
      const text = await readFile(join(root, file), 'utf8');
      const missing = lines.find((line) => !text.includes(line));
      if (missing !== undefined) {
        throw new Error(
          `${name}: ${file} lacks patches/${patch} (e.g. "${missing.slice(0, 80)}"); run npm ci there first`,
        );
      }
    }
  }
}
