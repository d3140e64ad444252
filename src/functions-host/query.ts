// The query string as ASP.NET Core parses it (QueryHelpers.ParseQuery): `&`-separated pairs, `+` as
// a space, percent-decoding, a key without `=` has the value "", and keys compare case-insensitively
// (the first spelling names the key).
export type Query = Map<string, { key: string; values: string[] }>;

export function parseQuery(search: string): Query {
  const query: Query = new Map();
  const text = search.startsWith('?') ? search.slice(1) : search;
  if (text === '') return query;
  for (const pair of text.split('&')) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const key = decode(equals < 0 ? pair : pair.slice(0, equals));
    const value = equals < 0 ? '' : decode(pair.slice(equals + 1));
    if (key === '' && equals < 0) continue;
    const folded = key.toUpperCase();
    const entry = query.get(folded);
    if (entry) entry.values.push(value);
    else query.set(folded, { key, values: [value] });
  }
  return query;
}

export function queryValue(query: Query, key: string): string[] | undefined {
  return query.get(key.toUpperCase())?.values;
}

function decode(text: string): string {
  const spaced = text.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    return spaced;
  }
}
