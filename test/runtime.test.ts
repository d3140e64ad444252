import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { RECOMMENDED_NODE_OPTIONS } from '../src/runtime.js';

describe('recommended node flags', () => {
  it('are the ones npm start uses and the README tells Azure to set', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: Record<string, string> };
    const readme = await readFile('README.md', 'utf8');
    for (const flag of RECOMMENDED_NODE_OPTIONS) {
      expect(pkg.scripts.start).toContain(flag);
      expect(readme).toContain(`NODE_OPTIONS=${flag}`);
    }
  });
});
