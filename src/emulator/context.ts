import type { KeyObject } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { FaultPlan, FaultRule } from './faults.js';
import type { MediaOptions } from './media.js';
import type { EmulatorStore } from './store.js';

export interface ObservedRequest {
  method: string;
  path: string;
  /** All headers but `authorization`. */
  headers: Record<string, string | string[] | undefined>;
  /** Remote port: one per upstream connection, so tests can count connections. */
  remotePort: number | undefined;
}

export interface EmulatorStats {
  connections: number;
  openConnections: number;
  requests: number;
}

/** What every request handler of one emulator shares. */
export interface Context {
  key: KeyObject;
  store: EmulatorStore;
  log: Logger;
  media: MediaOptions;
  /** Answer `Range: bytes=...` on `GET /media/{id}` with 206 (see docs/cosmos-rest.md for why it is off by default). */
  honourMediaRanges: boolean;
  lsn: number;
  onRequest: ((request: ObservedRequest) => void) | undefined;
  stats: EmulatorStats;
  faults: FaultPlan;
  /** The fault that shapes each response still being worked on (delay, drop instead of answering). */
  activeFaults: WeakMap<ServerResponse, FaultRule>;
}
