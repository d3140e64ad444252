import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_UNPACKED, REPO_ROOT } from '../scripts/package.js';
import { RECOMMENDED_NODE_OPTIONS } from '../src/runtime.js';
import { loadSettings } from '../src/settings.js';

/**
 * No Bicep compiler runs here, and CI deploys nothing: these checks read the azd template as text
 * and hold it to what the app and the README say, so a renamed setting or a module wired to a
 * parameter that does not exist shows up before anyone runs `azd up`.
 */
const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8');
const infra = (path: string) => read(join('infra', path));
/** Bicep without its `//` comments (which may name what the code must not do). */
const code = (path: string) => infra(path).replace(/(^|\s)\/\/.*$/gm, '$1');

/** `param name type = default` lines of a Bicep file: name to default ('' when it has none). */
function params(bicep: string): Map<string, string | undefined> {
  const found = new Map<string, string | undefined>();
  for (const match of bicep.matchAll(/^param (\w+) \w+(?: = (.+))?$/gm))
    found.set(match[1]!, match[2]?.trim());
  return found;
}

/** The text between the brace after `start` and its matching close. */
function block(text: string, start: string): string {
  const open = text.indexOf('{', text.indexOf(start));
  if (text.indexOf(start) < 0 || open < 0) throw new Error(`no block after ${start}`);
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    if (text[i] === '}' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unclosed block after ${start}`);
}

/** `key: value` entries at the top level of an object literal's body. */
function entries(body: string): Map<string, string> {
  const found = new Map<string, string>();
  let depth = 0;
  for (const line of body.split('\n')) {
    const match = /^\s*([\w-]+|'[^']+'):\s*(.*)$/.exec(line);
    if (depth === 0 && match) found.set(match[1]!.replace(/'/g, ''), match[2]!.trim());
    depth += (line.match(/[{[]/g) ?? []).length - (line.match(/[}\]]/g) ?? []).length;
  }
  return found;
}

const main = infra('main.bicep');
const mainParams = params(main);
const appSettings = infra('app/appsettings.bicep');
const bridgeSettings = entries(block(appSettings, 'var bridgeSettings'));
const hostSettings = entries(block(main, 'var hostSettings'));

/** The names in the README's settings tables (first column), e.g. `MAX_PART_BYTES`. */
function readmeSettings(): Set<string> {
  const readme = read('README.md');
  const section = readme.slice(
    readme.indexOf('\n## Settings'),
    readme.indexOf('\n## ', readme.indexOf('\n## Settings') + 1),
  );
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const firstCell = /^\|([^|]+)\|/.exec(line)?.[1] ?? '';
    for (const name of firstCell.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(name[1]!);
  }
  return names;
}

describe('the azd template', () => {
  it('sets only settings the README documents, and always the ones the bridge needs in Azure', () => {
    const documented = readmeSettings();
    expect(documented.size).toBeGreaterThan(10);
    const set = [...bridgeSettings.keys(), 'BLOB_ACCOUNT_URL'];
    // NODE_OPTIONS is Node's own; the README explains it beside the deployment.
    expect(set.filter((name) => name !== 'NODE_OPTIONS' && !documented.has(name))).toEqual([]);
    for (const name of [
      'COSMOS_CONNECTION_STRING',
      'NODE_OPTIONS',
      'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
      'MEDIA_STORE',
    ]) {
      expect(bridgeSettings.has(name), name).toBe(true);
    }
    expect(appSettings).toContain("mediaStore == 'blob' ? { BLOB_ACCOUNT_URL: blobEndpoint } : {}");
  });

  it('keeps the Cosmos DB connection string in Key Vault, and no key anywhere in the template', () => {
    expect(bridgeSettings.get('COSMOS_CONNECTION_STRING')).toBe(
      "'@Microsoft.KeyVault(SecretUri=${cosmosSecretUri})'",
    );
    expect(main).toMatch(/@secure\(\)\n(@description\(.*\)\n)?param cosmosConnectionString string$/m);
    expect(infra('core/keyvault.bicep')).toContain('enableRbacAuthorization: true');
    expect(infra('core/storage.bicep')).toContain('allowSharedKeyAccess: false');
    for (const file of ['main.bicep', 'core/storage.bicep', 'app/function.bicep', 'app/appsettings.bicep']) {
      expect(code(file), file).not.toMatch(/listKeys|AccountKey=|AzureWebJobsStorage:/);
    }
    expect(hostSettings.get('AzureWebJobsStorage__credential')).toBe("'managedidentity'");
    for (const service of ['blob', 'queue', 'table']) {
      expect(hostSettings.get(`AzureWebJobsStorage__${service}ServiceUri`)).toBe(
        `storage.outputs.${service}Endpoint`,
      );
    }
  });

  it('gives settings the app accepts, with the same defaults as the app, the README and main.parameters.json', () => {
    const parameterFile = read('infra/main.parameters.json');
    const env: Record<string, string> = {};
    for (const [name, value] of bridgeSettings) {
      const literal = /^'([^$']*)'$/.exec(value)?.[1];
      const fromParam = mainParams.get(value)?.replace(/^'(.*)'$/, '$1');
      if (literal !== undefined) env[name] = literal;
      else if (fromParam !== undefined) {
        env[name] = fromParam;
        // The parameter file's fallback (`${MAX_PART_BYTES=67108864}`) says the same.
        expect(parameterFile).toContain(`"\${${name}=${fromParam}}"`);
      }
    }
    expect(Object.keys(env).sort()).toEqual(
      [
        'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
        'MAX_PART_BYTES',
        'MAX_REQUEST_BYTES',
        'MEDIA_STORE',
        'NODE_OPTIONS',
      ].sort(),
    );
    expect(env.NODE_OPTIONS).toBe(RECOMMENDED_NODE_OPTIONS.join(' '));
    expect(Number(env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)).toBeGreaterThanOrEqual(
      Number(env.MAX_REQUEST_BYTES),
    );
    const key = Buffer.alloc(64, 1).toString('base64');
    const cosmos = `AccountEndpoint=https://account.documents.azure.com:443/;AccountKey=${key};`;
    // What the host's identity-based AzureWebJobsStorage settings resolve to: the app queues clean-up there.
    const storage = { AzureWebJobsStorage__queueServiceUri: 'https://st1.queue.core.windows.net/' };
    const settings = loadSettings({ ...env, ...storage, COSMOS_CONNECTION_STRING: cosmos });
    expect(settings.limits).toMatchObject({
      maxPartBytes: loadSettings({ ...storage, COSMOS_CONNECTION_STRING: cosmos }).limits.maxPartBytes,
      maxRequestBytes: loadSettings({ ...storage, COSMOS_CONNECTION_STRING: cosmos }).limits.maxRequestBytes,
    });
    expect(settings.cleanup.queueServiceUrl?.href).toBe(storage.AzureWebJobsStorage__queueServiceUri);
    const blob = loadSettings({
      ...env,
      ...storage,
      COSMOS_CONNECTION_STRING: cosmos,
      MEDIA_STORE: 'blob',
      BLOB_ACCOUNT_URL: 'https://st1.blob.core.windows.net/',
    });
    expect(blob.media).toMatchObject({ store: 'blob' });
  });

  it('passes every module the parameters it declares, and only those', () => {
    for (const match of main.matchAll(/^module (\w+) '([^']+)' = \{/gm)) {
      const [, name, path] = match as unknown as [string, string, string];
      expect(existsSync(join(REPO_ROOT, 'infra', path)), path).toBe(true);
      const declared = params(infra(path));
      const passed = entries(block(block(main, `module ${name} `), 'params:'));
      expect(
        [...passed.keys()].filter((p) => !declared.has(p)),
        `${name} is passed unknown parameters`,
      ).toEqual([]);
      const required = [...declared].filter(([, fallback]) => fallback === undefined).map(([p]) => p);
      expect(
        required.filter((p) => !passed.has(p)),
        `${name} misses parameters`,
      ).toEqual([]);
    }
    // Every module output main.bicep reads is declared by that module.
    const modulePaths = new Map([...main.matchAll(/^module (\w+) '([^']+)'/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [, moduleName, output] of main.matchAll(/\b(\w+)\.outputs\.(\w+)/g)) {
      expect(infra(modulePaths.get(moduleName!)!), `${moduleName}.outputs.${output}`).toMatch(
        new RegExp(`^output ${output} `, 'm'),
      );
    }
    const fileParams = Object.keys(
      (JSON.parse(read('infra/main.parameters.json')) as { parameters: object }).parameters,
    );
    expect(fileParams.filter((p) => !mainParams.has(p))).toEqual([]);
    // Without a default and not in the file, azd asks: only the secret is left to that.
    const asked = [...mainParams].filter(
      ([p, fallback]) => fallback === undefined && !fileParams.includes(p),
    );
    expect(asked.map(([p]) => p)).toEqual(['cosmosConnectionString']);
  });

  it('runs Node.js 22 on Flex Consumption, declared the Flex way, as package.json and .nvmrc say', () => {
    const functionApp = infra('app/function.bicep');
    expect(block(block(functionApp, 'functionAppConfig: {'), 'runtime: {')).toMatch(
      /name: 'node'\s+version: '22'/,
    );
    expect(functionApp).toContain("tier: 'FlexConsumption'");
    expect(functionApp).toContain("type: 'SystemAssigned'");
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toBe('>=22');
    expect(read('.nvmrc').trim()).toBe('22');
    // Flex Consumption takes these from functionAppConfig, or not at all.
    for (const file of ['main.bicep', 'app/function.bicep', 'app/appsettings.bicep']) {
      expect(code(file), file).not.toMatch(
        /FUNCTIONS_WORKER_RUNTIME|FUNCTIONS_EXTENSION_VERSION|WEBSITE_RUN_FROM_PACKAGE|WEBSITE_NODE_DEFAULT_VERSION/,
      );
    }
  });

  it('grants the identity its roles, and applies the app settings only after them', () => {
    const rbac = infra('app/rbac.bicep');
    for (const role of [
      'b7e6dc6d-f1e8-4753-8033-0f276bb0955b', // Storage Blob Data Owner
      '974c5e8b-45b9-4653-ba55-5f855dd0fb88', // Storage Queue Data Contributor
      '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3', // Storage Table Data Contributor
      '3913510d-42f4-4e42-8a64-420c390055eb', // Monitoring Metrics Publisher
      '4633458b-17de-408a-b874-0445c86b69e6', // Key Vault Secrets User
    ]) {
      expect(rbac).toContain(`'${role}'`);
    }
    expect(block(main, 'module settings ')).toContain('dependsOn: [rbac]');
  });

  it('deploys, through azd, the folder `npm run package` writes, tagged for the service azure.yaml names', () => {
    const azureYaml = read('azure.yaml');
    expect(azureYaml).toMatch(/^ {2}api:\n {4}project: \.\n {4}language: js\n {4}host: function\n/m);
    expect(azureYaml).toContain(`dist: ${relative(REPO_ROOT, DEFAULT_UNPACKED)}\n`);
    expect(azureYaml.match(/run: npm run package/g)?.length).toBe(2);
    expect(
      (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.package,
    ).toContain('dist/scripts/package.js');
    expect(infra('app/function.bicep')).toContain("'azd-service-name': 'api'");
  });
});
