import { badRequest } from './errors.js';

/** One partial-update operation, as `@azure/cosmos` sends it (`PATCH` with `{"operations": [...]}`). */
export interface PatchOperation {
  op: 'add' | 'set' | 'replace' | 'remove' | 'incr' | 'move';
  path: string;
  value?: unknown;
  from?: string;
}

const MAX_OPERATIONS = 10;

/** Reads a patch body: `{"operations": [...], "condition"?: "FROM c WHERE ..."}`; 400 otherwise. */
export function patchOf(body: unknown): { operations: PatchOperation[]; condition: string | undefined } {
  // `@azure/cosmos` sends a bare array of operations, or `{operations, condition}` for a conditional patch.
  const { operations, condition } = (Array.isArray(body) ? { operations: body } : (body ?? {})) as {
    operations?: unknown;
    condition?: unknown;
  };
  if (!Array.isArray(operations) || operations.length === 0 || operations.length > MAX_OPERATIONS) {
    throw badRequest(`A patch carries 1 to ${MAX_OPERATIONS} operations.`);
  }
  if (condition !== undefined && typeof condition !== 'string')
    throw badRequest('The patch condition must be a string.');
  return { operations: operations as PatchOperation[], condition };
}

/**
 * Applies patch operations to a copy of a document, with the service's rules: `replace`, `remove` and
 * `incr` need the target to exist, `add` inserts into arrays (`-` appends), `set` creates or overwrites.
 */
export function applyPatch(
  document: Record<string, unknown>,
  operations: PatchOperation[],
): Record<string, unknown> {
  const copy = structuredClone(document);
  for (const operation of operations) {
    if (typeof operation?.path !== 'string' || !operation.path.startsWith('/')) {
      throw badRequest('Each patch operation needs a path such as "/a/b".');
    }
    const { parent, key } = locate(copy, operation.path);
    switch (operation.op) {
      case 'add':
        if (Array.isArray(parent)) {
          const index = key === '-' ? parent.length : arrayIndex(parent, key, true);
          parent.splice(index, 0, operation.value);
        } else parent[key] = operation.value;
        break;
      case 'set':
        if (Array.isArray(parent)) parent[arrayIndex(parent, key, true)] = operation.value;
        else parent[key] = operation.value;
        break;
      case 'replace':
        requireExisting(parent, key, operation.path);
        (parent as Record<string, unknown>)[key] = operation.value;
        break;
      case 'remove':
        requireExisting(parent, key, operation.path);
        if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
        else delete parent[key];
        break;
      case 'incr': {
        const current = (parent as Record<string, unknown>)[key];
        if (typeof operation.value !== 'number' || (current !== undefined && typeof current !== 'number')) {
          throw badRequest(`incr needs numbers at ${operation.path}.`);
        }
        (parent as Record<string, unknown>)[key] = (current ?? 0) + operation.value;
        break;
      }
      case 'move': {
        if (typeof operation.from !== 'string') throw badRequest('move needs "from".');
        const source = locate(copy, operation.from);
        requireExisting(source.parent, source.key, operation.from);
        const value = (source.parent as Record<string, unknown>)[source.key];
        delete (source.parent as Record<string, unknown>)[source.key];
        (parent as Record<string, unknown>)[key] = value;
        break;
      }
      default:
        throw badRequest(`Unknown patch operation "${String((operation as { op?: unknown }).op)}".`);
    }
  }
  return copy;
}

function locate(
  document: Record<string, unknown>,
  path: string,
): { parent: Record<string, unknown> | unknown[]; key: string } {
  const names = path
    .slice(1)
    .split('/')
    .map((name) => name.replace(/~1/g, '/').replace(/~0/g, '~'));
  const key = names.pop()!;
  let parent: unknown = document;
  for (const name of names) {
    parent =
      typeof parent === 'object' && parent !== null ? (parent as Record<string, unknown>)[name] : undefined;
    if (typeof parent !== 'object' || parent === null) throw badRequest(`The path ${path} does not exist.`);
  }
  return { parent: parent as Record<string, unknown> | unknown[], key };
}

function requireExisting(parent: Record<string, unknown> | unknown[], key: string, path: string): void {
  const exists = Array.isArray(parent) ? /^\d+$/.test(key) && Number(key) < parent.length : key in parent;
  if (!exists) throw badRequest(`The path ${path} does not exist.`);
}

function arrayIndex(array: unknown[], key: string, allowEnd: boolean): number {
  const index = Number(key);
  if (!/^\d+$/.test(key) || index > array.length || (!allowEnd && index === array.length)) {
    throw badRequest(`The array index ${key} is out of range.`);
  }
  return index;
}
