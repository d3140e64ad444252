import { describe, expect, it } from 'vitest';
import { contentTypeAllowed, parseContentTypes } from '../src/policy/content-types.js';
import { parseTargets, targetAllowed } from '../src/policy/targets.js';

describe('ALLOWED_TARGETS patterns', () => {
  const rules = parseTargets('app/photos, app-*/uploads, logs/*', 'ALLOWED_TARGETS');
  it.each([
    ['app', 'photos', true],
    ['app', 'Photos', false],
    ['app', 'photos2', false],
    ['app-eu', 'uploads', true],
    ['app-', 'uploads', true],
    ['app', 'uploads', false],
    ['logs', 'anything', true],
    ['other', 'photos', false],
    ['app.', 'photos', false],
  ])('%s/%s allowed: %s', (db, coll, allowed) => {
    expect(targetAllowed(rules, db, coll)).toBe(allowed);
  });
  it('allows everything when unset, and treats regex characters literally', () => {
    expect(targetAllowed(undefined, 'x', 'y')).toBe(true);
    const literal = parseTargets('a.b/(c)', 'ALLOWED_TARGETS');
    expect(targetAllowed(literal, 'a.b', '(c)')).toBe(true);
    expect(targetAllowed(literal, 'axb', '(c)')).toBe(false);
  });
});

describe('ALLOWED_CONTENT_TYPES patterns', () => {
  const rules = parseContentTypes('image/*, application/pdf', 'ALLOWED_CONTENT_TYPES');
  it.each([
    ['image/png', true],
    ['IMAGE/JPEG; q=1', true],
    ['application/pdf', true],
    ['application/pdfx', false],
    ['text/plain', false],
    ['imagex/png', false],
  ])('%s allowed: %s', (type, allowed) => {
    expect(contentTypeAllowed(rules, type)).toBe(allowed);
  });
});
