import { readFile } from 'node:fs/promises';
import { SettingsError, type Env } from '../settings.js';

/**
 * The `Values` of `local.settings.json`, as Azure Functions Core Tools read them. A missing file is
 * no settings; a malformed one is an error naming the file.
 */
export async function readLocalSettings(path: string): Promise<Env> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new SettingsError(`${path} is not valid JSON.`);
  }
  const { IsEncrypted, Values } = (parsed ?? {}) as { IsEncrypted?: unknown; Values?: unknown };
  if (IsEncrypted === true)
    throw new SettingsError(`${path} is encrypted; the dev host reads plain values only.`);
  if (Values === undefined) return {};
  if (typeof Values !== 'object' || Values === null || Array.isArray(Values)) {
    throw new SettingsError(`${path}: "Values" must be an object of setting names to strings.`);
  }
  const env: Env = {};
  for (const [name, value] of Object.entries(Values)) {
    if (typeof value !== 'string') throw new SettingsError(`${path}: the value of ${name} must be a string.`);
    env[name] = value;
  }
  return env;
}
