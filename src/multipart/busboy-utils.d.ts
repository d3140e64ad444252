// busboy 1.6 ships no types for its internal helpers; this declares the one the bridge uses.
declare module 'busboy/lib/utils.js' {
  const utils: {
    parseContentType: (header: string) => { params?: Record<string, string> } | undefined;
  };
  export default utils;
}
