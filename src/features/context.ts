import type { WriterContext } from '../attachments/writer.js';
import type { Caller } from '../auth/caller.js';
import type { Settings } from '../settings.js';
import type { ReplayMemory } from '../multipart/replay.js';

/** What a route handler has to work with: the app's shared parts, and this request's caller and log. */
export interface RequestContext extends WriterContext {
  settings: Settings;
  /** What parts in flight may keep, together, to send a throttled create again. */
  replayMemory: ReplayMemory;
  /** Who is calling, when the route authenticates callers. */
  caller: Caller | undefined;
}

/** A route's path parameters, raw (percent-encoded as they came). */
export type RouteParams = Readonly<Record<string, string>>;

export type RouteHandler = (
  request: Request,
  params: RouteParams,
  context: RequestContext,
) => Promise<Response>;
