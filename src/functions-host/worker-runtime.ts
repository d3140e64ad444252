// The running worker and what the host derived from it (functions, HTTP routes, where its HTTP
// proxy listens). When the worker process exits, the host starts a new one and indexes the app
// again, as the Functions host restarts its language worker; meanwhile requests get 503.
import { lookup } from 'node:dns/promises';
import { Agent } from 'node:http';
import type { ForwardTarget } from './http-forwarder.js';
import type { FunctionMetadata } from './protocol.js';
import { compareRoutes, httpRoutes, type HttpRoute } from './routing/route-table.js';
import { WorkerChannel, type WorkerChannelOptions } from './worker-channel.js';

/** More exits than this within RESTART_WINDOW_MS and the host stops restarting the worker. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export interface Indexed {
  channel: WorkerChannel;
  functions: FunctionMetadata[];
  routes: HttpRoute[];
  /** The worker's HTTP proxy; undefined when the app did not enable HTTP streaming. */
  target: ForwardTarget | undefined;
}

export class WorkerRuntime {
  #current: Indexed | undefined;
  #ready: Promise<Indexed>;
  #closing = false;
  readonly #exits: number[] = [];

  private constructor(
    private readonly options: WorkerChannelOptions & { routePrefix: string },
    first: Indexed,
  ) {
    this.#current = first;
    this.#ready = Promise.resolve(first);
    this.#watch(first);
  }

  static async start(options: WorkerChannelOptions & { routePrefix: string }): Promise<WorkerRuntime> {
    return new WorkerRuntime(options, await index(options));
  }

  /** The worker now, or undefined while a new one starts. */
  get current(): Indexed | undefined {
    return this.#current;
  }

  /** The worker once one is running (rejects if the host gave up restarting it). */
  ready(): Promise<Indexed> {
    return this.#ready;
  }

  #watch(indexed: Indexed): void {
    indexed.channel.onExit((code, signal) => {
      indexed.target?.agent.destroy();
      if (this.#closing) return;
      this.#current = undefined;
      const { logs } = this.options;
      logs.host(
        'error',
        'Worker.Node',
        `Language Worker Process exited. Pid=${indexed.channel.pid}. ${signal ?? `Exit code ${code}`}.`,
        {
          pid: indexed.channel.pid,
        },
      );
      const now = Date.now();
      this.#exits.push(now);
      while (this.#exits.length > 0 && this.#exits[0]! < now - RESTART_WINDOW_MS) this.#exits.shift();
      if (this.#exits.length > MAX_RESTARTS) {
        logs.host(
          'critical',
          'Worker.Node',
          `The worker exited ${this.#exits.length} times within a minute; the host stops restarting it.`,
        );
        this.#ready = Promise.reject(new Error('The worker is not running.'));
        this.#ready.catch(() => undefined);
        return;
      }
      this.#ready = index(this.options).then((next) => {
        if (this.#closing) {
          next.channel.kill();
          return next;
        }
        this.#current = next;
        this.#watch(next);
        logs.host('information', 'Worker.Node', `Restarted the worker process (Pid=${next.channel.pid}).`);
        return next;
      });
      this.#ready.catch((err: unknown) =>
        logs.host('critical', 'Worker.Node', `The worker could not be restarted: ${(err as Error).message}`),
      );
    });
  }

  async close(gracePeriodMs: number): Promise<void> {
    this.#closing = true;
    const current = this.#current ?? (await this.#ready.catch(() => undefined));
    if (!current) return;
    await current.channel.terminate(gracePeriodMs);
    current.target?.agent.destroy();
  }
}

async function index(options: WorkerChannelOptions & { routePrefix: string }): Promise<Indexed> {
  const { logs } = options;
  const channel = await WorkerChannel.start(options);
  logs.host('information', 'Worker.Node', `Worker process started and initialized (Pid=${channel.pid}).`, {
    pid: channel.pid,
  });
  if (channel.loadError) {
    logs.host('error', 'Host.Startup', `The app failed to load: ${channel.loadError}`, {
      loadError: channel.loadError,
    });
  }
  const functions = channel.functions;
  const routes: HttpRoute[] = [];
  for (const metadata of functions) {
    try {
      routes.push(...httpRoutes([metadata], options.routePrefix));
    } catch (err) {
      logs.host(
        'error',
        'Host.Startup',
        `The function '${metadata.name}' has an invalid route: ${(err as Error).message}`,
      );
    }
  }
  // One table for all functions; Array.prototype.sort is stable, so equal routes keep app order.
  routes.sort((x, y) => compareRoutes(x.template, y.template));
  if (functions.length === 0) {
    logs.host(
      'warning',
      'Host.Startup',
      'No job functions found. Try making your job classes and methods public.',
    );
  } else {
    logs.host(
      'information',
      'Host.Startup',
      `Found the following functions: ${functions.map((f) => f.name).join(', ')}`,
    );
  }
  let target: ForwardTarget | undefined;
  const uri = channel.httpUri;
  if (uri) {
    const { address } = await lookup(uri.hostname);
    // Idle connections to the worker's proxy close before its 5 s keep-alive timeout does.
    const agent = new Agent({ keepAlive: true, timeout: 4000 });
    target = { agent, host: address, port: Number(uri.port), hostHeader: uri.host };
  }
  return { channel, functions, routes, target };
}
