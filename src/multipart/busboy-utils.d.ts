// busboy 1.6 ships no types for its internal helpers; this declares the ones the bridge uses.
declare module 'busboy/lib/utils.js' {
  const utils: {
    parseContentType: (
      header: string,
    ) => { type: string; subtype: string; params?: Record<string, string> } | undefined;
    parseDisposition: (
      header: string,
      decoder: unknown,
    ) => { type: string; params: Record<string, string> } | undefined;
    getDecoder: (charset: string) => unknown;
  };
  export default utils;
}
