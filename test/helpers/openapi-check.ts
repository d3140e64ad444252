import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { OpenApiDocument } from '../../src/features/openapi/description.js';
import type { RecordedAnswer } from './answers.js';

// ajv-formats is CommonJS with its function as `default`.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

type Json = Record<string, unknown>;
const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'] as const;
/** The path item that stands for the catch-all route `{*path}` (any number of segments). */
export const CATCH_ALL = '/{path}';
const SCHEMA_ID = 'urn:bridge:openapi';

export interface OperationKey {
  template: string;
  method: string;
}

/**
 * Checks answers against the OpenAPI description: the operation a request reaches (as the Functions
 * host routes: literal segments before parameters, a path's other templates when this one lacks the
 * method, the catch-all last), the status, the headers it requires and the values of those it names,
 * the content type and the JSON body against the schema. Each problem is a line of text.
 */
export class AnswerChecker {
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly templates: { template: string; segments: string[] }[];
  private readonly server: string;
  /** Operations that answers reached, as `METHOD template`. */
  readonly reached = new Set<string>();

  constructor(private readonly doc: OpenApiDocument) {
    this.ajv = new Ajv2020({ strict: false, allErrors: false });
    addFormats(this.ajv);
    this.ajv.addSchema(doc, SCHEMA_ID);
    const server = ((doc.servers as { url: string }[] | undefined)?.[0]?.url ?? '/').replace(/\/$/, '');
    this.server = server;
    this.templates = Object.keys(doc.paths)
      .filter((template) => template !== CATCH_ALL)
      .map((template) => ({ template, segments: template.split('/').filter(Boolean) }))
      // More literal segments first, compared segment by segment, as the host prefers them.
      .sort((a, b) => specificity(b.segments).localeCompare(specificity(a.segments)));
  }

  /** Every operation of the description, as `METHOD template`. */
  operations(): string[] {
    return Object.entries(this.doc.paths).flatMap(([template, item]) =>
      METHODS.filter((method) => item[method] !== undefined).map(
        (method) => `${method.toUpperCase()} ${template}`,
      ),
    );
  }

  /** The operation a request reaches, or a problem when it is outside the API. */
  operationFor(method: string, rawPath: string): OperationKey | string {
    if (!rawPath.startsWith(`${this.server}/`)) return `outside the server URL "${this.server}"`;
    const segments = normalise(rawPath.slice(this.server.length));
    const lower = method.toLowerCase();
    for (const { template, segments: pattern } of this.templates) {
      if (!matches(pattern, segments)) continue;
      if (this.doc.paths[template]![lower] !== undefined) return { template, method: lower };
    }
    if (this.doc.paths[CATCH_ALL]?.[lower] !== undefined) return { template: CATCH_ALL, method: lower };
    return `no operation for method ${method}`;
  }

  /** The problems of one answer (none when it conforms). */
  check(answer: RecordedAnswer): string[] {
    const found = this.operationFor(answer.method, answer.path);
    if (typeof found === 'string') return [found];
    const { template, method } = found;
    this.reached.add(`${method.toUpperCase()} ${template}`);
    const operation = this.doc.paths[template]![method] as Json;
    const responses = operation.responses as Record<string, Json>;
    const response = responses[String(answer.status)];
    if (!response) {
      return [`status ${answer.status} is not documented (documented: ${Object.keys(responses).join(', ')})`];
    }
    const pointer = `#/paths/${escape(template)}/${method}/responses/${answer.status}`;
    return [
      ...this.checkHeaders(response, answer),
      ...(answer.finished ? this.checkBody(response, answer, pointer) : []),
    ];
  }

  private checkHeaders(response: Json, answer: RecordedAnswer): string[] {
    const problems: string[] = [];
    // Answers the host gives itself carry none of the app's headers.
    if (answer.bodyBytes === 0 && response['x-may-be-empty'] === true && !answer.headers['x-request-id'])
      return problems;
    for (const [name, declared] of Object.entries((response.headers ?? {}) as Record<string, Json>)) {
      const header = this.resolve(declared);
      const value = answer.headers[name.toLowerCase()];
      if (value === undefined) {
        if (header.required === true) problems.push(`required header ${name} is missing`);
        continue;
      }
      const schema = header.schema as Json | undefined;
      const shown = value.slice(0, 80);
      if (schema && !this.ajv.validate(schema, value)) {
        problems.push(`header ${name}: "${shown}" ${this.ajv.errorsText(this.ajv.errors)}`);
      }
    }
    return problems;
  }

  private checkBody(response: Json, answer: RecordedAnswer, pointer: string): string[] {
    const content = response.content as Record<string, Json> | undefined;
    if (answer.method === 'HEAD') {
      return answer.bodyBytes === 0 ? [] : [`a HEAD answer has a body (${answer.bodyBytes} bytes)`];
    }
    if (answer.bodyBytes === 0) {
      if (!content || response['x-may-be-empty'] === true || content['*/*']) return [];
      return ['the body is empty, but the description says it has content'];
    }
    if (!content) return [`a body of ${answer.bodyBytes} bytes, but the description documents none`];
    const type = (answer.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    const mediaType = Object.keys(content).find((declared) => mediaTypeMatches(declared, type));
    if (mediaType === undefined) {
      return [`content type "${type}" is not documented (documented: ${Object.keys(content).join(', ')})`];
    }
    if (!/json$/.test(type) || answer.json === undefined) return [];
    let body: unknown;
    try {
      body = JSON.parse(answer.json);
    } catch {
      return ['the body is not JSON'];
    }
    const validate = this.validator(`${pointer}/content/${escape(mediaType)}/schema`);
    if (validate(body)) return [];
    const code = (body as { code?: unknown }).code;
    return [
      `body${typeof code === 'string' ? ` (code ${code})` : ''}: ${this.ajv.errorsText(validate.errors, { dataVar: 'body' })}`,
    ];
  }

  private validator(pointer: string): ValidateFunction {
    let validate = this.validators.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `${SCHEMA_ID}${pointer}` });
      this.validators.set(pointer, validate);
    }
    return validate;
  }

  /** A `$ref` within the description, followed. */
  private resolve(node: Json): Json {
    const target = node.$ref;
    if (typeof target !== 'string') return node;
    let current: unknown = this.doc;
    for (const part of target.replace(/^#\//, '').split('/')) {
      current = (current as Json)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    return this.resolve(current as Json);
  }
}

/** The path's segments, as the host reads them: empty ones, `.` and `..` resolved. */
function normalise(path: string): string[] {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return segments;
}

function matches(pattern: string[], segments: string[]): boolean {
  if (pattern.length !== segments.length) return false;
  return pattern.every((part, i) => {
    if (/^\{\w+\}$/.test(part)) return true;
    let segment = segments[i]!;
    try {
      segment = decodeURIComponent(segment);
    } catch {
      // Malformed escapes stay as they are, and match no literal.
    }
    return part.toLowerCase() === segment.toLowerCase();
  });
}

/** `1` for each literal segment and `0` for each parameter: a string that sorts more literal first. */
function specificity(segments: string[]): string {
  return segments.map((part) => (/^\{\w+\}$/.test(part) ? '0' : '1')).join('');
}

function mediaTypeMatches(declared: string, actual: string): boolean {
  if (declared === '*/*') return true;
  if (declared.endsWith('/*')) return actual.startsWith(declared.slice(0, -1));
  return declared === actual;
}

function escape(pointerPart: string): string {
  return pointerPart.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Problems grouped by where and what, with how often each came, for a readable failure. */
export function summarise(problems: { answer: RecordedAnswer; problem: string }[], limit = 60): string {
  const counts = new Map<string, number>();
  for (const { answer, problem } of problems) {
    const key = `${answer.method} ${answer.path.replace(/[^/]{40,}/g, (s) => `${s.slice(0, 12)}…`)} -> ${answer.status}: ${problem}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const lines = [...counts].map(([key, count]) => (count > 1 ? `${key} (x${count})` : key));
  return (
    lines.slice(0, limit).join('\n') + (lines.length > limit ? `\n… and ${lines.length - limit} more` : '')
  );
}
