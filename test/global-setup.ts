// Before the suite: build the upload page's assets module, and the app when dist is missing or older
// than the sources (the Functions host forks its worker from the compiled script and loads the app's
// built entry), and start one Azurite (Blob and Queue) that every test file shares, each with queues
// and containers of its own.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startAzurite } from '../src/devhost/azurite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A connection string for the run's one Azurite (Blob and Queue). */
    storage: string;
  }
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MARKER = join(ROOT, 'dist', 'src', 'functions-host', 'worker', 'main.js');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) {
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return newest;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  buildIfStale();
  const azurite = await startAzurite(0);
  project.provide('storage', azurite.connectionString);
  return () => azurite.close();
}

function buildIfStale(): void {
  // The upload page's assets module first (rewritten only when the page changed), then the app.
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-ui.mjs')], { cwd: ROOT, stdio: 'inherit' });
  let built = 0;
  try {
    built = statSync(MARKER).mtimeMs;
  } catch {
    built = 0;
  }
  const sources = Math.max(newestSource(join(ROOT, 'src')), newestSource(join(ROOT, 'functions')));
  if (built >= sources) return;
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      stdio: 'inherit',
    },
  );
}
