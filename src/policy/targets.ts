import { SettingsError } from '../settings-error.js';
import { globToRegExp } from './glob.js';

/** One `database/collection` pattern of ALLOWED_TARGETS; `*` matches any run of characters. */
export interface TargetRule {
  database: RegExp;
  collection: RegExp;
}

export function parseTargets(value: string, setting: string): TargetRule[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map((entry, index) => {
      const parts = entry.split('/');
      if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
        throw new SettingsError(
          `${setting}: entry ${index + 1} is not a database/collection pattern such as "app/photos" or "app/*".`,
        );
      }
      return { database: globToRegExp(parts[0]!), collection: globToRegExp(parts[1]!) };
    });
}

/** Ids are matched as they are (case-sensitive, as Cosmos DB ids are). */
export function targetAllowed(rules: TargetRule[] | undefined, db: string, coll: string): boolean {
  return rules === undefined || rules.some((rule) => rule.database.test(db) && rule.collection.test(coll));
}
