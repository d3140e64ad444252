/** The shape of the core every host adapts: a web-standard request in, a response out. */
export type FetchHandler = (request: Request) => Promise<Response>;
