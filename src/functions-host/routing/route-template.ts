// ASP.NET Core route templates, as the Functions host parses and matches HTTP trigger routes
// (Microsoft.AspNetCore.Routing's TemplateParser and TemplateMatcher): literal and parameter parts,
// `{name?}`, `{name=default}`, `{name:constraint}`, catch-all `{*name}` / `{**name}`, and complex
// segments such as `{name}.{ext}`.
import { checkConstraint, RouteTemplateError, validateConstraint } from './route-constraints.js';

export { RouteTemplateError };

export interface RouteParameter {
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue: string | undefined;
  /** Inline constraints as written, e.g. `int`, `min(1)`. */
  constraints: string[];
}

export type RoutePart = { kind: 'literal'; text: string } | { kind: 'parameter'; parameter: RouteParameter };

export interface RouteTemplate {
  text: string;
  segments: RoutePart[][];
  parameters: RouteParameter[];
}

export function parseRouteTemplate(text: string): RouteTemplate {
  // A leading `/` or `~/` and a trailing `/` name the same route.
  const trimmed = text.replace(/^~?\//, '').replace(/\/$/, '');
  const segments = trimmed === '' ? [] : trimmed.split('/').map((segment) => parseSegment(segment, text));
  const parameters = segments.flat().flatMap((part) => (part.kind === 'parameter' ? [part.parameter] : []));
  const names = new Set<string>();
  for (const parameter of parameters) {
    const key = parameter.name.toLowerCase();
    if (names.has(key))
      throw new RouteTemplateError(
        `The route parameter name '${parameter.name}' appears more than once in "${text}".`,
      );
    names.add(key);
  }
  segments.forEach((segment, index) => {
    const catchAll = segment.find((part) => part.kind === 'parameter' && part.parameter.catchAll);
    if (catchAll && (index !== segments.length - 1 || segment.length !== 1)) {
      throw new RouteTemplateError(`A catch-all parameter can only appear as the last segment of "${text}".`);
    }
    segment.forEach((part, i) => {
      if (segment.length === 1 || part.kind !== 'parameter' || !part.parameter.optional) return;
      // In a complex segment an optional parameter must come last, after a period (`{name}.{ext?}`).
      const before = segment[i - 1];
      if (i !== segment.length - 1 || before?.kind !== 'literal' || before.text !== '.') {
        throw new RouteTemplateError(
          `In "${text}", the optional parameter '${part.parameter.name}' must end its segment after a period.`,
        );
      }
    });
  });
  return { text, segments, parameters };
}

function parseSegment(segment: string, template: string): RoutePart[] {
  if (segment === '') throw new RouteTemplateError(`The route template "${template}" has an empty segment.`);
  const parts: RoutePart[] = [];
  let literal = '';
  let i = 0;
  while (i < segment.length) {
    const char = segment[i]!;
    if (char === '{' && segment[i + 1] === '{') {
      literal += '{';
      i += 2;
    } else if (char === '}' && segment[i + 1] === '}') {
      literal += '}';
      i += 2;
    } else if (char === '{') {
      const end = findParameterEnd(segment, i + 1);
      if (end < 0) throw new RouteTemplateError(`Unbalanced '{' in route template "${template}".`);
      if (literal) parts.push({ kind: 'literal', text: literal });
      literal = '';
      if (parts.at(-1)?.kind === 'parameter') {
        throw new RouteTemplateError(`Two parameters must be separated by a literal in "${template}".`);
      }
      parts.push({ kind: 'parameter', parameter: parseParameter(segment.slice(i + 1, end), template) });
      i = end + 1;
    } else if (char === '}') {
      throw new RouteTemplateError(`Unbalanced '}' in route template "${template}".`);
    } else if (char === '?') {
      throw new RouteTemplateError(`The literal section of "${template}" cannot contain '?'.`);
    } else {
      literal += char;
      i += 1;
    }
  }
  if (literal) parts.push({ kind: 'literal', text: literal });
  return parts;
}

/** The closing brace of a parameter; braces inside a constraint's parentheses do not count. */
function findParameterEnd(segment: string, from: number): number {
  let depth = 0;
  for (let i = from; i < segment.length; i++) {
    const char = segment[i];
    if (char === '(') depth++;
    else if (char === ')') depth = Math.max(0, depth - 1);
    else if (char === '}' && depth === 0) return i;
  }
  return -1;
}

function parseParameter(body: string, template: string): RouteParameter {
  let rest = body;
  let catchAll = false;
  if (rest.startsWith('**')) {
    catchAll = true;
    rest = rest.slice(2);
  } else if (rest.startsWith('*')) {
    catchAll = true;
    rest = rest.slice(1);
  }
  let optional = false;
  if (rest.endsWith('?')) {
    optional = true;
    rest = rest.slice(0, -1);
  }
  let defaultValue: string | undefined;
  const constraints: string[] = [];
  const nameMatch = /^[^:=?*{}/]+/.exec(rest);
  const name = nameMatch?.[0] ?? '';
  if (!name) throw new RouteTemplateError(`A route parameter in "${template}" has no name.`);
  rest = rest.slice(name.length);
  while (rest.startsWith(':')) {
    const constraint = readConstraint(rest.slice(1));
    // Braces in a constraint are written doubled (`regex(^\\d{{3}}$)`).
    constraints.push(constraint.replaceAll('{{', '{').replaceAll('}}', '}'));
    rest = rest.slice(1 + constraint.length);
  }
  if (rest.startsWith('=')) {
    defaultValue = rest.slice(1);
    rest = '';
  }
  if (rest) throw new RouteTemplateError(`The route parameter '{${body}}' in "${template}" is not valid.`);
  if (optional && defaultValue !== undefined) {
    throw new RouteTemplateError(
      `An optional parameter cannot have a default value: '{${body}}' in "${template}".`,
    );
  }
  for (const constraint of constraints) validateConstraint(constraint, template);
  return { name, optional: optional || catchAll, catchAll, defaultValue, constraints };
}

/** One inline constraint: up to the next `:` or `=` outside parentheses. */
function readConstraint(text: string): string {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '(') depth++;
    else if (char === ')') depth--;
    else if (depth === 0 && (char === ':' || char === '=')) return text.slice(0, i);
  }
  return text;
}

/**
 * Matches decoded path segments against a template. Returns the route values (absent optional
 * parameters are left out, defaults filled in) or undefined. A trailing slash is ignored.
 */
export function matchRouteTemplate(
  template: RouteTemplate,
  path: string[],
): Record<string, string> | undefined {
  const segments = path.length > 0 && path[path.length - 1] === '' ? path.slice(0, -1) : path;
  const values: Record<string, string> = {};
  for (let i = 0; i < template.segments.length; i++) {
    const parts = template.segments[i]!;
    const first = parts[0]!;
    if (parts.length === 1 && first.kind === 'parameter' && first.parameter.catchAll) {
      // An empty segment cannot start a catch-all value (`/a/b//c`), though a trailing slash may end it.
      if (segments.length > i && segments[i] === '') return undefined;
      const rest = segments.slice(i).join('/');
      if (rest !== '') values[first.parameter.name] = rest;
      else if (first.parameter.defaultValue !== undefined)
        values[first.parameter.name] = first.parameter.defaultValue;
      return checkConstraints(template, values);
    }
    const segment = segments[i];
    if (segment === undefined) {
      // Every remaining template segment must be an optional parameter or have a default.
      for (const rest of template.segments.slice(i)) {
        const only = rest.length === 1 ? rest[0] : undefined;
        if (
          only?.kind !== 'parameter' ||
          (!only.parameter.optional && only.parameter.defaultValue === undefined)
        ) {
          return undefined;
        }
        if (only.parameter.defaultValue !== undefined)
          values[only.parameter.name] = only.parameter.defaultValue;
      }
      return checkConstraints(template, values);
    }
    if (!matchSegment(parts, segment, values)) return undefined;
  }
  if (segments.length > template.segments.length) return undefined;
  return checkConstraints(template, values);
}

function matchSegment(parts: RoutePart[], segment: string, values: Record<string, string>): boolean {
  if (parts.length === 1) {
    const part = parts[0]!;
    if (part.kind === 'literal') return equalsIgnoreCase(part.text, segment);
    if (segment === '') return false;
    values[part.parameter.name] = segment;
    return true;
  }
  // A complex segment. ASP.NET matches its literals from the right (LastIndexOf); greedy groups from
  // the left find the same split. `{name}.{ext?}` also matches without the period and the extension,
  // but not with a period and no extension.
  const last = parts[parts.length - 1]!;
  if (last.kind === 'parameter' && last.parameter.optional) {
    if (matchParts(parts, segment, values)) return true;
    if (segment.endsWith('.')) return false;
    return matchParts(parts.slice(0, -2), segment, values);
  }
  return matchParts(parts, segment, values);
}

function matchParts(parts: RoutePart[], segment: string, values: Record<string, string>): boolean {
  const pattern = parts.map((part) => (part.kind === 'literal' ? escapeRegExp(part.text) : '(.+)')).join('');
  const match = new RegExp(`^${pattern}$`, 'is').exec(segment);
  if (!match) return false;
  let group = 1;
  for (const part of parts) {
    if (part.kind === 'parameter') values[part.parameter.name] = match[group++]!;
  }
  return true;
}

function checkConstraints(
  template: RouteTemplate,
  values: Record<string, string>,
): Record<string, string> | undefined {
  for (const parameter of template.parameters) {
    const value = values[parameter.name];
    if (value === undefined) continue;
    if (!parameter.constraints.every((constraint) => checkConstraint(constraint, value))) return undefined;
  }
  return values;
}

export function equalsIgnoreCase(a: string, b: string): boolean {
  return a.length === b.length && a.toUpperCase() === b.toUpperCase();
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
