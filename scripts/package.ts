/**
 * `npm run package`: the deployable zip, holding exactly what the Functions host runs in Azure.
 *
 * The app's entry (package.json `main`, from its TypeScript source) is bundled by esbuild into ESM
 * with code splitting, so what the app imports lazily (`import()`: token checks, Blob Storage and
 * the identity SDK) stays in chunks of its own that load only when first used. Everything is in the
 * bundle but `@azure/functions-core`, which the Functions worker provides at run time by hooking
 * CommonJS `require`; the banner gives the bundle a real `require` for that and for Node built-ins.
 * The zip holds `host.json`, a `package.json` whose `main` is the bundle, the bundle and its chunks:
 * no node_modules, sources, tests, dev host, emulator, benchmarks or docs.
 */
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { strFromU8, unzipSync, zipSync, type Zippable } from 'fflate';

/** The repository root (this file is scripts/package.ts, or dist/scripts/package.js once compiled). */
const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = basename(dirname(HERE)) === 'dist' ? resolve(HERE, '..', '..') : resolve(HERE, '..');

/** Where `npm run package` writes the zip, and the same files unpacked (what azd deploys). */
export const DEFAULT_ZIP = join(REPO_ROOT, 'dist', 'package.zip');
export const DEFAULT_UNPACKED = join(REPO_ROOT, 'dist', 'package');

/** The one module the bundle leaves to the Functions worker. */
export const WORKER_PROVIDED = '@azure/functions-core';

/** Name of the bundle inside the package; `package.json` `main` points at it. */
export const BUNDLE_MAIN = 'index.js';

/** Node's ESM has no `require`; esbuild's CommonJS shims use this one (builtins, the worker's module). */
const REQUIRE_BANNER =
  "import { createRequire as __bridgeCreateRequire } from 'node:module';\n" +
  'const require = __bridgeCreateRequire(import.meta.url);';

/**
 * Fixed timestamps, so the same sources give the same zip bytes (zip times start in 1980). Zip
 * stores local time, hence a local date: the bytes do not depend on the machine's time zone.
 */
const ZIP_MTIME = new Date(2000, 0, 1);

export interface BuiltPackage {
  /** Path inside the package (forward slashes) to contents, sorted by path. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** The zip of those files. */
  readonly zip: Uint8Array;
  /** esbuild's account of inputs, outputs and imports. */
  readonly metafile: Metafile;
}

interface RootPackageJson {
  name: string;
  version: string;
  description?: string;
  main: string;
}

/**
 * The TypeScript source of package.json `main` (`dist/functions/index.js` is built from
 * `functions/index.ts`), so the package follows the entry wherever it moves.
 */
export function entrySource(main: string): string {
  return main.replace(/^(\.\/)?dist\//, '').replace(/\.js$/, '.ts');
}

/** Bundles the app and zips it, in memory. */
export async function buildPackage(root: string = REPO_ROOT): Promise<BuiltPackage> {
  const rootPackage = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as RootPackageJson;
  const outdir = join(root, '.package-out'); // never written: esbuild keeps the output in memory
  const result = await build({
    absWorkingDir: root,
    entryPoints: { index: entrySource(rootPackage.main) },
    tsconfig: join(root, 'tsconfig.build.json'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Node 22 in Azure; 20 is the oldest runtime the suite still runs the package on.
    target: 'node20',
    splitting: true,
    outdir,
    entryNames: '[name]',
    chunkNames: 'chunks/[name]-[hash]',
    external: [WORKER_PROVIDED],
    banner: { js: REQUIRE_BANNER },
    // Readable stack traces in Application Insights without source maps: names and lines are kept.
    minify: false,
    sourcemap: false,
    // Third-party license notices stay with the code they cover, at the end of each file.
    legalComments: 'eof',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });
  const files = new Map<string, Uint8Array>();
  files.set('host.json', await readFile(join(root, 'host.json')));
  files.set('package.json', new TextEncoder().encode(deployedPackageJson(rootPackage)));
  for (const output of result.outputFiles)
    files.set(relative(outdir, output.path).split(sep).join('/'), output.contents);
  const sorted = new Map([...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { files: sorted, zip: zipFiles(sorted), metafile: result.metafile };
}

/** The package's own package.json: what the worker reads to find and load the bundle as ESM. */
function deployedPackageJson(rootPackage: RootPackageJson): string {
  const deployed = {
    name: rootPackage.name,
    version: rootPackage.version,
    description: rootPackage.description,
    private: true,
    license: 'MIT',
    type: 'module',
    main: BUNDLE_MAIN,
  };
  return `${JSON.stringify(deployed, null, 2)}\n`;
}

function zipFiles(files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const entries: Zippable = {};
  for (const [path, contents] of files) {
    // Unix permissions rw-r--r--, so the files read the same on the Linux workers.
    entries[path] = [contents, { level: 9, mtime: ZIP_MTIME, os: 3, attrs: 0o644 << 16 }];
  }
  return zipSync(entries);
}

/** Zips a whole folder the way the package is zipped (to compare with other ways of packaging). */
export async function zipFolder(folder: string): Promise<{ zip: Uint8Array; files: number; bytes: number }> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  const files = new Map<string, Uint8Array>();
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(relative(folder, path).split(sep).join('/'), await readFile(path));
  }
  let bytes = 0;
  for (const contents of files.values()) bytes += contents.byteLength;
  return { zip: zipFiles(files), files: files.size, bytes };
}

export interface UnpackedPackage {
  /** The folder the zip was unpacked into. */
  readonly root: string;
  /** Absolute path of the bundle package.json `main` names. */
  readonly main: string;
  /** Paths inside the package (forward slashes), sorted. */
  readonly files: readonly string[];
}

/** Unpacks a package zip into `folder` (created if missing; meant to be empty). */
export async function unpackInto(zip: Uint8Array, folder: string): Promise<UnpackedPackage> {
  const entries = unzipSync(zip);
  const files = Object.keys(entries).sort();
  for (const path of files) {
    const target = resolve(folder, path);
    if (!target.startsWith(resolve(folder) + sep)) throw new Error(`zip entry escapes the folder: ${path}`);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, entries[path]!);
  }
  const packageJson = entries['package.json'];
  if (!packageJson) throw new Error('the package has no package.json');
  const { main } = JSON.parse(strFromU8(packageJson)) as { main: string };
  return { root: folder, main: resolve(folder, main), files };
}

export interface PackagePaths extends UnpackedPackage {
  /** The zip that was unpacked. */
  readonly zipPath: string;
}

/**
 * Builds the package, writes the zip into `folder` as `app.zip` and unpacks that zip into
 * `folder/app`: the hook for running the package under a local Functions host (its script root is
 * `appRoot`).
 */
export async function packageInto(folder: string, root: string = REPO_ROOT): Promise<PackagePaths> {
  const built = await buildPackage(root);
  await mkdir(folder, { recursive: true });
  const zipPath = join(folder, 'app.zip');
  await writeFile(zipPath, built.zip);
  const unpacked = await unpackInto(await readFile(zipPath), join(folder, 'app'));
  return { zipPath, ...unpacked };
}

/** A fresh temporary folder holding a packaged app (for tests and benchmarks; the caller removes it). */
export async function packageIntoTemp(prefix = 'bridge-package-'): Promise<PackagePaths> {
  return packageInto(await mkdtemp(join(tmpdir(), prefix)));
}

/** `npm run package`: dist/package.zip, and the same files unpacked in dist/package/ for azd. */
async function main(): Promise<void> {
  const built = await buildPackage();
  await mkdir(dirname(DEFAULT_ZIP), { recursive: true });
  await writeFile(DEFAULT_ZIP, built.zip);
  await rm(DEFAULT_UNPACKED, { recursive: true, force: true });
  const unpacked = await unpackInto(built.zip, DEFAULT_UNPACKED);
  const size = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
  console.log(
    `${relative(REPO_ROOT, DEFAULT_ZIP)}: ${size(built.zip.byteLength)}, ${unpacked.files.length} files`,
  );
  for (const [path, contents] of built.files)
    console.log(`  ${path.padEnd(40)} ${size(contents.byteLength)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
