import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COSMOS_CODES, openApiDescription } from '../src/features/openapi/description.js';
import { ERRORS } from '../src/http/errors.js';
import { ROUTES } from '../src/routes.js';
import { lintDescription, writeDescription } from '../scripts/openapi.js';
import type { RecordedAnswer } from './helpers/answers.js';
import { AnswerChecker, CATCH_ALL } from './helpers/openapi-check.js';
import { FUNCTION_KEY, json, startStack, type Stack } from './helpers/stack.js';

type Json = Record<string, unknown>;
const doc = openApiDescription('/api');
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];

function operations(): { template: string; method: string; operation: Json }[] {
  return Object.entries(doc.paths).flatMap(([template, item]) =>
    METHODS.filter((method) => item[method] !== undefined).map((method) => ({
      template,
      method,
      operation: item[method] as Json,
    })),
  );
}

/** The `code` values an error answer allows, from its schema (`allOf: [Error, {properties: {code}}]`). */
function documentedCodes(answer: Json): string[] {
  const schema = ((answer.content as Json | undefined)?.['application/json'] as Json | undefined)?.schema as
    | { allOf?: [unknown, { properties: { code: { enum?: string[]; anyOf?: { enum?: string[] }[] } } }] }
    | undefined;
  const code = schema?.allOf?.[1].properties.code;
  return code?.enum ?? code?.anyOf?.flatMap((option) => option.enum ?? []) ?? [];
}

describe('the OpenAPI description', () => {
  it('lints clean with Redocly CLI: no error, no warning (redocly.yaml says which rules are off, and why)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'openapi-lint-'));
    try {
      const file = join(dir, 'openapi.json');
      await writeDescription(file);
      const { exitCode, output } = await lintDescription(file, 'json');
      const report = JSON.parse(output) as { totals: Json; problems: { ruleId: string; message: string }[] };
      expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
      expect(exitCode).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('describes exactly the routes of the table, each with exactly its methods', () => {
    const described = new Map(
      Object.entries(doc.paths).map(([template, item]) => [
        template,
        METHODS.filter((method) => item[method] !== undefined).sort(),
      ]),
    );
    // Several routes share a template (create and list, say): their methods together.
    const routed = new Map<string, string[]>();
    for (const route of ROUTES) {
      const template = route.route === '{*path}' ? CATCH_ALL : `/${route.route}`;
      const methods = route.methods.map((method) => method.toLowerCase());
      routed.set(template, [...(routed.get(template) ?? []), ...methods].sort());
    }
    expect(Object.fromEntries(described)).toEqual(Object.fromEntries(routed));
  });

  it('gives every error code of src/http/errors.ts, each under its own status', () => {
    const seen = new Set<string>();
    for (const { template, method, operation } of operations()) {
      for (const [status, answer] of Object.entries(operation.responses as Record<string, Json>)) {
        for (const code of documentedCodes(answer)) {
          seen.add(code);
          const own = ERRORS[code as keyof typeof ERRORS];
          if (own !== undefined)
            expect(`${method} ${template} ${code} ${status}`).toBe(`${method} ${template} ${code} ${own}`);
          else
            expect(`${method} ${template} ${code} ${status}`).toBe(
              `${method} ${template} ${COSMOS_CODES[Number(status)]} ${status}`,
            );
        }
      }
    }
    // HeadersTooLarge comes only from the node:http dev host the benchmark runs; in Azure and in the
    // local Functions host the front end answers 431 itself, before the app.
    const missing = Object.keys(ERRORS).filter((code) => !seen.has(code) && code !== 'HeadersTooLarge');
    expect(missing).toEqual([]);
  });

  it('gives every operation a success (but the catch-all) and a caller error (but the description itself)', () => {
    for (const { template, method, operation } of operations()) {
      const statuses = Object.keys(operation.responses as Json);
      const where = `${method.toUpperCase()} ${template}`;
      if (template !== CATCH_ALL)
        expect(
          statuses.some((s) => /^[23]/.test(s)),
          where,
        ).toBe(true);
      if (template !== '/openapi.json')
        expect(
          statuses.some((s) => s.startsWith('4')),
          where,
        ).toBe(true);
      expect(typeof operation.operationId, where).toBe('string');
    }
  });
});

describe('the answer checker (what openapi-conformance.test.ts runs on every answer of the suite)', () => {
  const checker = new AnswerChecker(doc);
  const LIST = '/api/dbs/demo/colls/items/docs/welcome/attachments';
  const answer = (fields: Partial<RecordedAnswer>): RecordedAnswer => ({
    method: 'GET',
    path: LIST,
    status: 200,
    headers: { 'content-type': 'application/json' },
    bodyBytes: 2,
    json: '{"_rid":"r","Attachments":[],"_count":0}',
    finished: true,
    ...fields,
  });
  const error = (status: number, code: string, fields: Partial<RecordedAnswer> = {}) =>
    answer({ status, json: JSON.stringify({ code, message: 'm' }), ...fields });

  it('passes answers that conform', () => {
    expect(checker.check(answer({}))).toEqual([]);
    expect(checker.check(error(400, 'BadRequest'))).toEqual([]);
    expect(
      checker.check(error(404, 'NotFound', { path: '/api/no/such/route/at/all', method: 'PATCH' })),
    ).toEqual([]);
    // The host's own empty 401 for a missing function key.
    expect(
      checker.check(
        answer({ status: 401, headers: { 'content-length': '0' }, bodyBytes: 0, json: undefined }),
      ),
    ).toEqual([]);
  });

  it('routes as the host does: literal segments first, a template with the method, else the catch-all', () => {
    const upload = '/api/dbs/d/colls/c/docs/x/attachments/uploads';
    expect(checker.operationFor('POST', upload)).toEqual({
      template: '/dbs/{db}/colls/{coll}/docs/{doc}/attachments/uploads',
      method: 'post',
    });
    expect(checker.operationFor('GET', upload)).toEqual({
      template: '/dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}',
      method: 'get',
    });
    expect(checker.operationFor('PATCH', `${LIST}/a`)).toEqual({ template: CATCH_ALL, method: 'patch' });
  });

  it('flags an undocumented status, an undocumented code, a path outside the API and a wrong body', () => {
    expect(checker.check(answer({ status: 418 }))).toEqual([
      expect.stringMatching(/status 418 is not documented/),
    ]);
    expect(checker.check(error(400, 'Locked'))).toEqual([expect.stringMatching(/code Locked/)]);
    expect(checker.check(error(400, 'BadRequest', { json: '{"code":"BadRequest"}' }))).toEqual([
      expect.stringMatching(/message/),
    ]);
    expect(checker.check(answer({ path: '/elsewhere/x' }))).toEqual([
      expect.stringMatching(/outside the server URL/),
    ]);
    expect(checker.check(answer({ json: '{"Attachments":"no"}' }))).toEqual([expect.stringMatching(/body/)]);
    expect(checker.check(answer({ json: 'not json' }))).toEqual(['the body is not JSON']);
    expect(checker.check(answer({ headers: { 'content-type': 'text/html' } }))).toEqual([
      expect.stringMatching(/content type "text\/html" is not documented/),
    ]);
  });

  it('flags a missing required header, a header value outside its schema, and a HEAD answer with a body', () => {
    const uploads = '/api/uploads/abc';
    const options = {
      method: 'OPTIONS',
      path: uploads,
      status: 204,
      bodyBytes: 0,
      json: undefined,
      headers: {
        'tus-resumable': '1.0.0',
        'tus-version': '1.0.0',
        'tus-extension':
          'creation,creation-with-upload,creation-defer-length,termination,checksum,expiration',
        'tus-max-size': '5',
        'tus-checksum-algorithm': 'sha1,sha256,md5',
      },
    };
    expect(checker.check(answer(options))).toEqual([]);
    const { 'tus-version': _dropped, ...withoutVersion } = options.headers;
    expect(checker.check(answer({ ...options, headers: withoutVersion }))).toEqual([
      'required header Tus-Version is missing',
    ]);
    expect(
      checker.check(answer({ ...options, headers: { ...options.headers, 'tus-resumable': '0.2' } })),
    ).toEqual([expect.stringMatching(/^header Tus-Resumable: "0.2"/)]);
    expect(checker.check(answer({ method: 'HEAD', path: `${LIST}/a`, bodyBytes: 3 }))).toEqual([
      expect.stringMatching(/HEAD answer has a body/),
    ]);
  });
});

describe('served by the app', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const api = () => `${stack.host.url}/api`;

  it('answers GET /api/openapi.json to anyone, with the route prefix as its server', async () => {
    const response = await fetch(`${api()}/openapi.json`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const served = await json(response);
    expect(served).toEqual(JSON.parse(JSON.stringify(openApiDescription('/api'))));
    expect(served.servers).toEqual([expect.objectContaining({ url: '/api' })]);
    const head = await fetch(`${api()}/openapi.json`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('answers HEAD on the upload page and its files with the headers of GET and no body', async () => {
    for (const path of ['/ui', '/ui/app.js']) {
      const head = await fetch(`${api()}${path}`, { method: 'HEAD' });
      expect(head.status, path).toBe(200);
      expect(head.headers.get('content-security-policy'), path).toContain("script-src 'self'");
      expect(await head.text(), path).toBe('');
    }
  });

  it('takes tus PATCH, HEAD, GET and DELETE through POST with X-HTTP-Method-Override, and OPTIONS', async () => {
    const tus = { 'x-functions-key': FUNCTION_KEY, 'tus-resumable': '1.0.0' };
    const create = async () => {
      const created = await fetch(`${stack.route()}/uploads`, {
        method: 'POST',
        headers: {
          ...stack.headers(),
          ...tus,
          'upload-length': '5',
          'upload-metadata': `filename ${Buffer.from('override.txt').toString('base64')},uniqueId`,
        },
      });
      expect(created.status).toBe(201);
      return `${stack.host.url}${created.headers.get('location')!}`;
    };
    const upload = await create();
    const override = (method: string, init: RequestInit = {}) =>
      fetch(upload, {
        method: 'POST',
        ...init,
        headers: { ...tus, 'x-http-method-override': method, ...(init.headers as Record<string, string>) },
      });
    const head = await override('HEAD');
    expect([head.status, head.headers.get('upload-offset')]).toEqual([200, '0']);
    const patched = await override('PATCH', {
      headers: { 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' },
      body: 'hello',
    });
    expect([patched.status, patched.headers.get('upload-offset')]).toEqual([204, '5']);
    const status = await override('GET');
    expect(status.status).toBe(200);
    expect(await json(status)).toMatchObject({ complete: true, offset: 5, length: 5 });
    const plain = await fetch(upload, { method: 'POST', headers: tus });
    expect([plain.status, plain.headers.get('allow')]).toEqual([
      405,
      'HEAD, PATCH, DELETE, GET, OPTIONS, POST',
    ]);
    expect(await json(plain)).toMatchObject({ code: 'MethodNotAllowed' });
    const options = await fetch(upload, { method: 'OPTIONS', headers: { 'x-functions-key': FUNCTION_KEY } });
    expect([options.status, options.headers.get('tus-version')]).toEqual([204, '1.0.0']);
    // Terminating a complete upload drops its state; the attachment stays.
    expect((await override('DELETE')).status).toBe(204);
    const other = await create();
    const deleted = await fetch(other, {
      method: 'POST',
      headers: { ...tus, 'x-http-method-override': 'DELETE' },
    });
    expect(deleted.status).toBe(204);
    const gone = await fetch(other, { method: 'HEAD', headers: tus });
    expect(gone.status).toBe(404);
  });

  it('answers any other path or method at the catch-all: 404, or 405 with Allow', async () => {
    const nowhere = `${api()}/nowhere/at/all`;
    const head = await fetch(nowhere, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([404, '']);
    const deleted = await fetch(nowhere, { method: 'DELETE' });
    expect([deleted.status, (await json(deleted)).code]).toEqual([404, 'NotFound']);
    const media = `${stack.route()}/a/media`;
    const options = await fetch(media, { method: 'OPTIONS' });
    expect([options.status, options.headers.get('allow'), (await json(options)).code]).toEqual([
      405,
      'GET, HEAD',
      'MethodNotAllowed',
    ]);
  });
});
