// Route templates, checked against an independent reference: the expectations of ASP.NET Core's own
// tests for its route matcher (dotnet/aspnetcore, src/Http/Routing/test/UnitTests/Patterns/
// RoutePatternMatcherTest.cs), which the Functions host uses. Plus the host's route order
// (WebJobsRouteBuilder.RouteComparison), Kestrel's path decoding and ASP.NET's query parsing.
import { describe, expect, it } from 'vitest';
import { parseQuery } from '../src/functions-host/query.js';
import {
  compareRoutes,
  decodePath,
  httpRoutes,
  matchRoute,
} from '../src/functions-host/routing/route-table.js';
import {
  matchRouteTemplate,
  parseRouteTemplate,
  RouteTemplateError,
} from '../src/functions-host/routing/route-template.js';

/** The matcher alone, on a path split as ASP.NET's matcher splits it (no decoding, no normalizing). */
function match(template: string, path: string): Record<string, string> | undefined {
  return matchRouteTemplate(parseRouteTemplate(template), path.replace(/^\//, '').split('/'));
}

describe('route templates (ASP.NET Core RoutePatternMatcherTest cases)', () => {
  it.each([
    [
      '{controller}/{action}/{id}',
      '/Bank/DoAction/123',
      { controller: 'Bank', action: 'DoAction', id: '123' },
    ],
    ['{controller}/{action}/{id}', '/Bank/DoAction', undefined],
    [
      '{controller}/{action}/{id=default id}',
      '/Bank/DoAction',
      { controller: 'Bank', action: 'DoAction', id: 'default id' },
    ],
    ['{controller}/{action}/{id=default id}', '/Bank', undefined],
    ['moo/{p1}/bar/{p2}', '/moo/111/bar/222', { p1: '111', p2: '222' }],
    ['moo/{p1}/bar/{p2=default p2}', '/moo/111/bar/', { p1: '111', p2: 'default p2' }],
    ['moo/bar', '/moo/bar', {}],
    ['moo/bars', '/moo/bar', undefined],
    ['moo/bar', '/moo/bar/', {}],
    ['moo/bar/', '/moo/bar', {}],
    ['{p1}/{p2}/', '/moo/bar', { p1: 'moo', p2: 'bar' }],
    ['{p1}/{p2}/baz', '/moo/bar/boo', undefined],
    ['{p1}', '/moo/bar', undefined],
    ['DEFAULT.ASPX', '/default.aspx', {}],
    ['language/{lang}-{region}', '/language/en-US', { lang: 'en', region: 'US' }],
    ['language/{lang}-{region}a', '/language/en-USa', { lang: 'en', region: 'US' }],
    ['language/a{lang}-{region}', '/language/aen-US', { lang: 'en', region: 'US' }],
    ['language/a{lang}-{region}a', '/language/aen-USa', { lang: 'en', region: 'US' }],
    ['language/a{lang}-{region}a', '/language/a-USa', undefined],
    ['language/a{lang}-{region}a', '/language/aen-a', undefined],
    ['language/{lang}', '/language/en', { lang: 'en' }],
    ['language/{lang}', '/language/', undefined],
    ['language/{lang}', '/language', undefined],
    ['language/{lang}-', '/language/en-', { lang: 'en' }],
    ['language/a{lang}a', '/language/aena', { lang: 'en' }],
    ['language/{lang}-{region}', '/language/-', undefined],
    ['{Controller}..mvc/{id}/{Param1}', '/Home..mvc/123/p1', { Controller: 'Home', id: '123', Param1: 'p1' }],
    ['{Controller}.mvc/../{action}', '/Home.mvc/../index', { Controller: 'Home', action: 'index' }],
    ['{Controller}.mvc!/{action}', '/Home.mvc!/index', { Controller: 'Home', action: 'index' }],
    ['(Controller).mvc', '/(Controller).mvc', {}],
    ['Controller.mvc ', '/Controller.mvc ', {}],
    [
      'Home/ShowPilot/{missionId}/{*name}',
      '/Home/ShowPilot/777/12345./foobar',
      { missionId: '777', name: '12345./foobar' },
    ],
    ['{p1}/{*p2}', '/v1/v2/v3', { p1: 'v1', p2: 'v2/v3' }],
    ['{p1}/{*p2}', '/v1/', { p1: 'v1' }],
    ['{p1}/{*p2}', '/v1', { p1: 'v1' }],
    ['{p1}/{*p2=catchall}', '/v1', { p1: 'v1', p2: 'catchall' }],
    ['{p1}/{*p2=catchall}', '/v1/hello/whatever', { p1: 'v1', p2: 'hello/whatever' }],
    ['foo', '/fooBAR', undefined],
    ['foo', '/BARfoo', undefined],
    ['foo', '/BARfooBAR', undefined],
    ['foo', '/foo', {}],
    [
      'foo/{ }/{.!$%}/{dynamic.data}',
      '/foo/space/weimatch/omatcherid',
      { ' ': 'space', '.!$%': 'weimatch', 'dynamic.data': 'omatcherid' },
    ],
    ['{controller}/{language}-{locale}', '/foo', undefined],
    ['{controller}/{language}-{locale}', '/foo/xx-', undefined],
    ['{controller}/{language}-{locale}', '/foo/-yy', undefined],
    ['{controller}/{language}-{locale}', '/foo/xx-yy', { controller: 'foo', language: 'xx', locale: 'yy' }],
    ['{controller}/{action?}', '/Home/Index', { controller: 'Home', action: 'Index' }],
    ['{controller}/{action?}', '/Home', { controller: 'Home' }],
    ['{controller?}', '', {}],
    ['', '', {}],
    ['{controller}/{action?}/{id?}', '/Home/Index', { controller: 'Home', action: 'Index' }],
  ])('%s on "%s"', (template, path, expected) => {
    expect(match(template, path)).toEqual(expected);
  });

  it.each([
    ['moo/{p1}.{p2?}', '/moo/foo.bar', { p1: 'foo', p2: 'bar' }],
    ['moo/{p1?}', '/moo/foo', { p1: 'foo' }],
    ['moo/{p1?}', '/moo', {}],
    ['moo/{p1}.{p2?}', '/moo/foo', { p1: 'foo' }],
    ['moo/{p1}.{p2?}', '/moo/foo..bar', { p1: 'foo.', p2: 'bar' }],
    ['moo/{p1}.{p2?}', '/moo/foo.moo.bar', { p1: 'foo.moo', p2: 'bar' }],
    ['moo/{p1}.{p2}', '/moo/foo.bar', { p1: 'foo', p2: 'bar' }],
    ['moo/foo.{p1}.{p2?}', '/moo/foo.moo.bar', { p1: 'moo', p2: 'bar' }],
    ['moo/foo.{p1}.{p2?}', '/moo/foo.moo', { p1: 'moo' }],
    ['moo/.{p2?}', '/moo/.foo', { p2: 'foo' }],
    ['moo/.{p2?}', '/moo', undefined],
    ['moo/{p1}.{p2?}', '/moo/....', { p1: '..', p2: '.' }],
    ['moo/{p1}.{p2?}', '/moo/.bar', { p1: '.bar' }],
    ['moo/{p1}.{p2}.{p3?}', '/moo/foo.moo.bar', { p1: 'foo', p2: 'moo', p3: 'bar' }],
    ['moo/{p1}.{p2}.{p3?}', '/moo/foo.moo', { p1: 'foo', p2: 'moo' }],
    ['{p1}.{p2?}/{p3}', '/foo.moo/bar', { p1: 'foo', p2: 'moo', p3: 'bar' }],
    ['{p1}.{p2?}/{p3}', '/foo/bar', { p1: 'foo', p3: 'bar' }],
    ['{p1}.{p2?}/{p3}', '/.foo/bar', { p1: '.foo', p3: 'bar' }],
    ['moo/{p1}.{p2?}', '/moo/foo.', undefined],
    ['moo/{p1}.{p2?}', '/moo/.', undefined],
    ['moo/{p1}.{p2}', '/foo.', undefined],
    ['moo/{p1}.{p2}.{p3?}', '/moo/foo.moo.', undefined],
    ['moo/foo.{p2}.{p3?}', '/moo/bar.foo.moo', undefined],
    ['moo/foo.{p2}.{p3?}', '/moo/kungfoo.moo.bar', undefined],
    ['moo/{p1}.{p2}.{p3?}', '/moo/foo', undefined],
    ['{p1}.{p2?}/{p3}', '/foo./bar', undefined],
    ['moo/.{p2?}', '/moo/.', undefined],
    ['{p1}.{p2}/{p3}', '/.foo/bar', undefined],
  ])('optional parameter after a period: %s on "%s"', (template, path, expected) => {
    expect(match(template, path)).toEqual(expected);
  });

  it.each([
    '{prefix}x{suffix}:/xxxxxxxxxx',
    '{prefix}xyz{suffix}:/xxxxyzxyzxxxxxxyz',
    '{prefix}aa{suffix}:/aaaaa',
    '{prefix}aaa{suffix}:/aaaaa',
  ])('complex segment %s matches', (entry) => {
    const [template, path] = entry.split(':') as [string, string];
    expect(match(template, path)).toBeDefined();
  });

  it('refuses empty intermediate segments, and empty values at the start of a catch-all', () => {
    for (const path of ['///', '/a//', '/a/b//', '//b//', '///c', '///c/']) {
      expect(match('{controller?}/{action?}/{id?}', path), path).toBeUndefined();
    }
    for (const path of ['', '/', '/a', '/a/', '/a/b', '/a/b/', '/a/b/c', '/a/b/c/']) {
      expect(match('{controller?}/{action?}/{id?}', path), path).toBeDefined();
    }
    for (const path of ['///', '////', '/a//', '/a///', '//b/', '//b//', '///c', '///c/']) {
      expect(match('{controller}/{action}/{id}', path), path).toBeUndefined();
    }
    expect(match('{controller}/{action}/{*id}', '/a/b/c//')).toBeDefined();
    expect(match('{controller}/{action}/{*id}', '/a/b/c/////')).toBeDefined();
    expect(match('{controller}/{action}/{*id}', '/a/b//')).toBeUndefined();
    expect(match('{controller}/{action}/{*id}', '/a/b///c')).toBeUndefined();
  });

  it('checks inline constraints, including regex with doubled braces', () => {
    expect(match('{p1:regex(^\\d{{3}}-\\d{{3}}-\\d{{4}}$)}', '/123-456-7890')).toEqual({
      p1: '123-456-7890',
    });
    expect(match('{p1:regex(^\\d{{3}}-\\d{{3}}-\\d{{4}}$)}', '/12-456-7890')).toBeUndefined();
    expect(match('items/{id:int}', '/items/-7')).toEqual({ id: '-7' });
    expect(match('items/{id:int}', '/items/2147483648')).toBeUndefined();
    expect(match('items/{id:int:min(10)}', '/items/9')).toBeUndefined();
    expect(match('items/{id:guid}', '/items/0f8fad5b-d9cb-469f-a165-70867728950e')).toBeDefined();
    expect(match('items/{name:alpha:length(2,4)}', '/items/abcde')).toBeUndefined();
    expect(() => parseRouteTemplate('items/{id:nosuch}')).toThrow(RouteTemplateError);
    expect(() => parseRouteTemplate('a/{*rest}/b')).toThrow(RouteTemplateError);
    expect(() => parseRouteTemplate('{a}{b}')).toThrow(RouteTemplateError);
    expect(() => parseRouteTemplate('{p1}-{p2?}')).toThrow(RouteTemplateError);
  });
});

describe("the host's route table", () => {
  const http = (name: string, route: string, methods = ['GET']) => ({
    name,
    bindings: {
      req: { type: 'httpTrigger', direction: 'in' as const, route, methods, authLevel: 'anonymous' },
    },
  });

  it('orders routes as WebJobsRouteBuilder does: literal before parameter, more constraints first, longer first', () => {
    const ordered = (templates: string[]) =>
      templates
        .map((t) => parseRouteTemplate(t))
        .sort(compareRoutes)
        .map((t) => t.text);
    expect(ordered(['a/{id}', 'a/b', 'a/{id:int}', 'a', 'a/b/c', 'b'])).toEqual([
      'a/b/c',
      'a/b',
      'a/{id:int}',
      'a/{id}',
      'a',
      'b',
    ]);
  });

  it('tries routes in that order with each one methods, so a route may fall through to the next', () => {
    const routes = httpRoutes(
      [
        http('byId', 'docs/{id}', ['GET', 'DELETE']),
        http('uploads', 'docs/uploads', ['POST']),
        http('fallback', '{*rest}', []),
      ],
      'api',
    );
    const hit = (method: string, path: string) =>
      matchRoute(routes, method, decodePath(path))?.route.functionName;
    expect(hit('POST', '/api/docs/uploads')).toBe('uploads');
    expect(hit('GET', '/api/docs/uploads')).toBe('byId');
    expect(hit('PUT', '/api/docs/uploads')).toBe('fallback');
    expect(hit('GET', '/other')).toBeUndefined();
  });

  it('sees paths as Kestrel hands them over: decoded but for %2F, without dot segments', () => {
    expect(decodePath('/api/a%20b/c%2Fd/%E2%82%AC')).toEqual(['api', 'a b', 'c%2Fd', '€']);
    expect(decodePath('/api/./x/../y')).toEqual(['api', 'y']);
    expect(decodePath('/api/%zz')).toEqual(['api', '%zz']);
  });

  it('parses the query as ASP.NET does: + as space, keys case-insensitive, a key alone has ""', () => {
    const query = parseQuery('?a=1+2&A=3&b&c=%26&&=x');
    expect([...query.values()]).toEqual([
      { key: 'a', values: ['1 2', '3'] },
      { key: 'b', values: [''] },
      { key: 'c', values: ['&'] },
      { key: '', values: ['x'] },
    ]);
  });
});
