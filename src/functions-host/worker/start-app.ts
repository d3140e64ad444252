// Loading the app as the Node worker does (src/startApp.ts): package.json `main` names the entry
// point(s); a load failure is logged and, on Node 20+, blocks the app (the worker then reports it
// instead of functions, and the host runs with none).
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { WorkerSystemError } from './core-api.js';
import type { HookName, WorkerApp } from './worker-app.js';

interface PackageJson {
  main?: string;
  type?: string;
}

export async function startApp(app: WorkerApp, appDir: string): Promise<void> {
  const packageJson = await readPackageJson(app, appDir);
  await loadEntryPoints(app, appDir, packageJson);
  await executeHooks(app, 'appStart', {
    get hookData() {
      return app.appLevelOnlyHookData;
    },
    get appHookData() {
      return app.appHookData;
    },
    functionAppDirectory: appDir,
  });
}

export async function executeHooks(
  app: WorkerApp,
  hookName: HookName,
  context: unknown,
  invocationId?: string,
  category?: string,
): Promise<void> {
  const callbacks = app.hooks[hookName];
  if (callbacks.length === 0) return;
  const log = (message: string) =>
    app.log({ message, level: 'debug', logCategory: 'system', invocationId, category });
  log(`Executing ${callbacks.length} "${hookName}" hooks`);
  for (const callback of callbacks) await callback(context);
  log(`Executed "${hookName}" hooks`);
}

async function readPackageJson(app: WorkerApp, appDir: string): Promise<PackageJson> {
  try {
    return JSON.parse(await readFile(join(appDir, 'package.json'), 'utf8')) as PackageJson;
  } catch (err) {
    app.log({
      message: `Worker failed to load package.json: ${(err as Error).message}`,
      level: 'warning',
      logCategory: 'system',
    });
    return {};
  }
}

async function loadEntryPoints(app: WorkerApp, appDir: string, packageJson: PackageJson): Promise<void> {
  const pattern = packageJson.main;
  if (!pattern) return;
  let currentFile: string | undefined;
  try {
    const files = await matchEntryPoints(appDir, pattern);
    if (files.length === 0) {
      throw new WorkerSystemError(
        isGlob(pattern) ? 'Found zero files matching the supplied pattern' : 'File does not exist',
      );
    }
    for (const file of files) {
      currentFile = file;
      app.log({ message: `Loading entry point file "${file}"`, level: 'debug', logCategory: 'system' });
      const path = join(appDir, file);
      app.currentEntryPoint = path;
      try {
        await loadScriptFile(path, packageJson);
      } finally {
        app.currentEntryPoint = undefined;
      }
      app.log({ message: `Loaded entry point file "${file}"`, level: 'debug', logCategory: 'system' });
    }
  } catch (err) {
    const error = err instanceof Error ? err : new Error(format(err));
    const message = `Worker was unable to load entry point "${currentFile ?? pattern}": ${error.message}`;
    // Starting with Node 20 the worker always blocks the app on this error and prints its stack, so
    // it reaches the user; it also logs it over RPC.
    app.blockingAppStartError = error;
    console.error(error.stack ?? message);
    app.log({ message, level: 'error', logCategory: 'system' });
  }
}

function loadScriptFile(path: string, packageJson: PackageJson): Promise<unknown> {
  const isEsm = path.endsWith('.mjs') || (!path.endsWith('.cjs') && packageJson.type === 'module');
  return isEsm ? import(pathToFileURL(path).href) : Promise.resolve(createRequire(path)(path));
}

function isGlob(pattern: string): boolean {
  return /[*?[\]{}]/.test(pattern);
}

/**
 * The entry files `main` names. The worker uses globby; this covers `*`, `**` and `?`, which is what
 * Functions apps use (`dist/src/functions/*.js`).
 */
async function matchEntryPoints(appDir: string, pattern: string): Promise<string[]> {
  const normalized = pattern.replace(/^\.\//, '');
  if (!isGlob(normalized)) {
    const found = await readdir(join(appDir, normalized, '..')).catch(() => [] as string[]);
    return found.includes(normalized.split('/').pop()!) ? [normalized] : [];
  }
  const segments = normalized.split('/');
  const base = segments.slice(0, segments.findIndex(isGlob)).join('/');
  const regex = globToRegExp(normalized);
  const entries = await readdir(join(appDir, base), { recursive: true }).catch(() => [] as string[]);
  return entries
    .map((entry) =>
      relative(appDir, join(appDir, base, entry))
        .split(sep)
        .join('/'),
    )
    .filter((file) => !file.includes('node_modules/') && regex.test(file))
    .sort();
}

function globToRegExp(pattern: string): RegExp {
  const segments = pattern.split('/');
  let source = '';
  segments.forEach((segment, index) => {
    const last = index === segments.length - 1;
    if (segment === '**') {
      source += last ? '.*' : '(?:[^/]+/)*';
      return;
    }
    const escaped = segment.replace(/[.+^${}()|\\[\]]/g, '\\$&');
    source += escaped.replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + (last ? '' : '/');
  });
  return new RegExp(`^${source}$`);
}
