import { badRequest } from './errors.js';

/** A query as the SDKs send it: SQL text and named parameters. */
export interface QuerySpec {
  query: string;
  parameters?: { name: string; value: unknown }[];
}

interface CompiledQuery {
  exec(
    items: unknown[],
    options: {
      parameters?: QuerySpec['parameters'];
      maxItemCount?: number;
      continuation?: { token: string };
    },
  ): { result: unknown[]; continuation: { token: string } | null };
}

type Compile = (sql: string) => CompiledQuery;

let compiler: Promise<Compile> | undefined;

/**
 * `@zeit/cosmosdb-query` (the SQL engine `@vercel/cosmosdb-server` uses) compiles Cosmos DB SQL,
 * parameters, ORDER BY, aggregates, TOP/OFFSET and continuation tokens included. It takes a quarter
 * of a second to load, so it loads on the first query, not at every emulator start.
 */
function compile(sql: string): Promise<CompiledQuery> {
  compiler ??= import('@zeit/cosmosdb-query').then((module) => {
    const loaded = module.default as unknown as { default?: Compile } | Compile;
    return typeof loaded === 'function' ? loaded : loaded.default!;
  });
  return compiler.then((make) => {
    try {
      return make(sql);
    } catch (err) {
      throw badRequest(`Syntax error in the query: ${(err as Error).message}`);
    }
  });
}

/** Reads a query body: `{"query": "...", "parameters": [...]}`; 400 otherwise. */
export function querySpecOf(body: unknown): QuerySpec {
  const spec = body as Partial<QuerySpec> | null;
  if (
    typeof spec !== 'object' ||
    spec === null ||
    typeof spec.query !== 'string' ||
    spec.query.trim() === ''
  ) {
    throw badRequest('The query body must be {"query": "...", "parameters": [...]}.');
  }
  if (spec.parameters !== undefined && !Array.isArray(spec.parameters)) {
    throw badRequest('The query parameters must be an array of {"name","value"}.');
  }
  return { query: spec.query, parameters: spec.parameters ?? [] };
}

/** Runs a query over items; `continuation` is the token of the previous page, if any. */
export async function runQuery(
  items: unknown[],
  spec: QuerySpec,
  page: { maxItemCount: number; continuation: string | undefined },
): Promise<{ result: unknown[]; continuation: string | undefined }> {
  const query = await compile(spec.query);
  try {
    const { result, continuation } = query.exec(items, {
      parameters: spec.parameters,
      maxItemCount: page.maxItemCount,
      ...(page.continuation ? { continuation: { token: page.continuation } } : {}),
    });
    return { result, continuation: continuation?.token };
  } catch (err) {
    throw badRequest(`The query cannot be run: ${(err as Error).message}`);
  }
}

/** Whether a document matches a patch condition such as `FROM c WHERE c.status = 'open'`. */
export async function matchesCondition(document: unknown, condition: string): Promise<boolean> {
  const { result } = await runQuery(
    [document],
    { query: `SELECT VALUE COUNT(1) ${condition}` },
    { maxItemCount: 1, continuation: undefined },
  );
  return result[0] === 1;
}

/**
 * The query plan `@azure/cosmos` asks for beside every query. The emulator runs a whole query itself
 * (one partition key range), so the plan names no rewriting: the SDK sends the query as it is, and
 * uses a plan only when a direct query is refused.
 */
export function queryPlan(): Record<string, unknown> {
  return {
    partitionedQueryExecutionInfoVersion: 2,
    queryInfo: {
      distinctType: 'None',
      top: null,
      offset: null,
      limit: null,
      orderBy: [],
      orderByExpressions: [],
      groupByExpressions: [],
      groupByAliases: [],
      aggregates: [],
      groupByAliasToAggregateType: {},
      rewrittenQuery: '',
      hasSelectValue: false,
      dCountInfo: null,
      hasNonStreamingOrderBy: false,
    },
    queryRanges: [{ min: '', max: 'FF', isMinInclusive: true, isMaxInclusive: false }],
  };
}

/** Whether a query's filter pins every partition key path to one value (so it needs no cross-partition flag). */
export async function scopedToPartition(sql: string, paths: string[]): Promise<boolean> {
  const query = (await compile(sql)) as CompiledQuery & { containsPartitionKeys?(paths: string[]): boolean };
  try {
    return query.containsPartitionKeys?.(paths) ?? false;
  } catch {
    return false;
  }
}
