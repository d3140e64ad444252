import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openApiDescription } from '../src/features/openapi/description.js';
import { ANSWERS_DIR, type RecordedAnswer } from './helpers/answers.js';
import { AnswerChecker, summarise } from './helpers/openapi-check.js';

/**
 * Runs after every other test file (vitest.config.ts: its own project, a later group) and checks every
 * answer the local Functions host gave in front of the app during the run (test/helpers/answers.ts)
 * against the OpenAPI description.
 */
/** Fewer would mean answers went unrecorded: the whole suite gives several thousand. */
const MIN_ANSWERS = 2000;

function recorded(): RecordedAnswer[] {
  let files: string[];
  try {
    files = readdirSync(ANSWERS_DIR).filter((name) => name.startsWith('answers-'));
  } catch {
    return [];
  }
  return files.flatMap((name) =>
    readFileSync(join(ANSWERS_DIR, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RecordedAnswer),
  );
}

describe('every answer of the suite against the OpenAPI description', () => {
  it('is a documented status of a documented operation, with the headers and body described', () => {
    const answers = recorded();
    const checker = new AnswerChecker(openApiDescription('/api'));
    const problems = answers.flatMap((answer) =>
      checker.check(answer).map((problem) => ({ answer, problem })),
    );
    // Every operation of the description was reached by some test, so none is described unchecked.
    const unreached = checker.operations().filter((operation) => !checker.reached.has(operation));
    // One assertion, so that a failure shows all three: what did not conform, what no test reached,
    // and whether the suite ran through the stack at all (thousands of answers, not a handful).
    expect({ problems: summarise(problems), unreached, answers: answers.length > MIN_ANSWERS }).toEqual({
      problems: '',
      unreached: [],
      answers: true,
    });
    // Kept when the check fails, to look at; the next run starts a folder of its own.
    rmSync(ANSWERS_DIR, { recursive: true, force: true });
  });
});
