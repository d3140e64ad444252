/**
 * `npm run lint:openapi`: writes the OpenAPI description (src/features/openapi/description.ts) to
 * dist/openapi.json and lints it with Redocly CLI under redocly.yaml. test/openapi.test.ts runs the
 * same lint as part of `npm test`.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openApiDescription } from '../src/features/openapi/description.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository root (this file is scripts/openapi.ts, or dist/scripts/openapi.js once compiled). */
const ROOT = basename(dirname(HERE)) === 'dist' ? resolve(HERE, '..', '..') : resolve(HERE, '..');
const REDOCLY = join(ROOT, 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');

export interface LintResult {
  /** Redocly's exit code: 0 when there is no error. */
  exitCode: number;
  /** Its report (`stylish` for people, with its progress lines; `json` for tests, the report alone). */
  output: string;
}

/** Writes the description (server `/api`) as JSON to `file`. */
export async function writeDescription(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(openApiDescription('/api'), null, 2)}\n`);
}

/** Lints a description file with Redocly CLI and the repository's redocly.yaml. */
export async function lintDescription(
  file: string,
  format: 'stylish' | 'json' = 'stylish',
): Promise<LintResult> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [REDOCLY, 'lint', file, '--config', join(ROOT, 'redocly.yaml'), `--format=${format}`],
      {
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
    );
    return { exitCode: 0, output: format === 'json' ? stdout : `${stdout}${stderr}` };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    const output = format === 'json' ? (failed.stdout ?? '') : `${failed.stdout ?? ''}${failed.stderr ?? ''}`;
    return { exitCode: typeof failed.code === 'number' ? failed.code : 1, output };
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = join(ROOT, 'dist', 'openapi.json');
  await writeDescription(file);
  const { exitCode, output } = await lintDescription(file);
  process.stdout.write(output);
  process.exitCode = exitCode;
}
