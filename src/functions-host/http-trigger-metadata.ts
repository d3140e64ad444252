// The trigger metadata the host sends with an HTTP invocation in proxy (streaming) mode: the HTTP
// trigger binding's binding data (WebJobs.Extensions.Http, HttpTriggerAttributeBindingProvider) minus
// the request objects the worker declared it does not need (RpcHttpTriggerMetadataRemoved). That is:
// every query parameter but `code` as a top-level string, the route values (overriding query keys of
// the same name), then `Query` and `Headers` as JSON objects unless a query key took those names.
// Keys compare case-insensitively, as in the host's binding data dictionary.
import type { IncomingMessage } from 'node:http';
import type { RpcTypedData } from './protocol.js';
import type { Query } from './query.js';

export function httpTriggerMetadata(
  req: IncomingMessage,
  query: Query,
  routeValues: Record<string, string>,
): Record<string, RpcTypedData> {
  const data = new CaseInsensitiveRecord();
  // GetQueryParameterDictionary: one value per key, the last one wins.
  const queryDictionary: Record<string, string> = {};
  for (const { key, values } of query.values()) {
    const value = values[values.length - 1]!;
    queryDictionary[key] = value;
    if (key.toLowerCase() === 'code') continue;
    data.set(key, { string: value });
  }
  for (const [name, value] of Object.entries(routeValues)) data.set(name, { string: value });
  if (!data.has('Query')) data.set('Query', { json: JSON.stringify(queryDictionary) });
  if (!data.has('Headers')) data.set('Headers', { json: JSON.stringify(requestHeaders(req)) });
  return data.toObject();
}

/**
 * The request's headers as ASP.NET Core holds them: one entry per name (first spelling), repeated
 * headers joined with "," (StringValues.ToString()).
 */
export function requestHeaders(req: IncomingMessage): Record<string, string> {
  const headers = new Map<string, { name: string; values: string[] }>();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const folded = name.toLowerCase();
    const entry = headers.get(folded);
    if (entry) entry.values.push(raw[i + 1]!);
    else headers.set(folded, { name, values: [raw[i + 1]!] });
  }
  const result: Record<string, string> = {};
  for (const { name, values } of headers.values()) result[name] = values.join(',');
  return result;
}

class CaseInsensitiveRecord {
  readonly #entries = new Map<string, [string, RpcTypedData]>();
  has(key: string): boolean {
    return this.#entries.has(key.toUpperCase());
  }
  /** Like a .NET dictionary's indexer: a new value keeps the first spelling of the key. */
  set(key: string, value: RpcTypedData): void {
    const folded = key.toUpperCase();
    const existing = this.#entries.get(folded);
    this.#entries.set(folded, [existing?.[0] ?? key, value]);
  }
  toObject(): Record<string, RpcTypedData> {
    const result: Record<string, RpcTypedData> = {};
    for (const [key, value] of this.#entries.values()) result[key] = value;
    return result;
  }
}
