/** Who is calling, as far as authentication established it. */
export interface Caller {
  /**
   * `host`: Azure's Functions host checked a function key before the core ran; `function-key`: the dev
   * host checked it; `jwt` and `easy-auth`: a signed-in end user.
   */
  kind: 'host' | 'function-key' | 'jwt' | 'easy-auth';
  /** A claim's value as a string, or undefined when absent or not a single string or number. */
  claim(name: string): string | undefined;
}

export function claimsCaller(kind: Caller['kind'], claims: ReadonlyMap<string, unknown>): Caller {
  return {
    kind,
    claim(name) {
      const value = claims.get(name);
      if (typeof value === 'string') return value;
      if (typeof value === 'number' && Number.isFinite(value)) return String(value);
      return undefined;
    },
  };
}
