// Timer triggers as the Timers extension runs them: an NCRONTAB schedule with seconds (or a TimeSpan
// interval), `runOnStartup`, one invocation at a time, the next occurrence computed when the last
// one is done. The function gets the TimerInfo the host serializes: Schedule, ScheduleStatus and
// IsPastDue (which `@azure/functions` camel-cases).
import { Cron } from 'croner';
import { parseTimeSpan } from './config.js';
import type { HostLogs } from './host-logs.js';
import type { Invoke } from './invoker.js';
import type { FunctionMetadata } from './protocol.js';
import { resolveSettings } from './queue-trigger.js';

/** .NET's DateTime.MinValue, which ScheduleStatus.Last holds before a first run. */
const NEVER = '0001-01-01T00:00:00';
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TimerTrigger {
  functionName: string;
  bindingName: string;
  schedule: string;
  runOnStartup: boolean;
}

export function timerTriggers(
  functions: FunctionMetadata[],
  env: Record<string, string | undefined>,
): TimerTrigger[] {
  const triggers: TimerTrigger[] = [];
  for (const metadata of functions) {
    for (const [bindingName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== 'timertrigger') continue;
      triggers.push({
        functionName: metadata.name,
        bindingName,
        schedule: resolveSettings(typeof binding.schedule === 'string' ? binding.schedule : '', env),
        runOnStartup: binding.runOnStartup === true,
      });
    }
  }
  return triggers;
}

/** The TimerInfo the host passes (as JSON) to a timer function. */
export function timerInfo(status: { last: string; next: string } | null, isPastDue: boolean): string {
  return JSON.stringify({
    Schedule: { AdjustForDST: true },
    ScheduleStatus: status && { Last: status.last, Next: status.next, LastUpdated: new Date().toISOString() },
    IsPastDue: isPastDue,
  });
}

export class TimerListener {
  readonly #trigger: TimerTrigger;
  readonly #invoke: Invoke;
  readonly #logs: HostLogs;
  readonly #next: (after: Date) => Date | null;
  #timer: NodeJS.Timeout | undefined;
  #running = true;
  #last = NEVER;
  #current: Promise<unknown> | undefined;

  constructor(trigger: TimerTrigger, invoke: Invoke, logs: HostLogs, timeZone = 'UTC') {
    this.#trigger = trigger;
    this.#invoke = invoke;
    this.#logs = logs;
    this.#next = schedule(trigger.schedule, timeZone);
    if (trigger.runOnStartup) this.#run(new Date(), 'runOnStartup');
    else this.#arm();
  }

  #arm(): void {
    if (!this.#running) return;
    const next = this.#next(new Date());
    if (!next) return;
    const wait = next.getTime() - Date.now();
    this.#timer = setTimeout(
      () => (wait > MAX_TIMER_MS ? this.#arm() : this.#run(next, 'schedule')),
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
  }

  #run(scheduled: Date, why: 'schedule' | 'runOnStartup'): void {
    const next = this.#next(new Date(Math.max(Date.now(), scheduled.getTime())));
    const input = timerInfo({ last: this.#last, next: next ? next.toISOString() : NEVER }, false);
    this.#last = scheduled.toISOString();
    this.#current = this.#invoke({
      functionName: this.#trigger.functionName,
      reason: why === 'schedule' ? `Timer fired at ${new Date().toISOString()}` : 'Timer fired on startup',
      inputData: [{ name: this.#trigger.bindingName, data: { json: input } }],
      triggerMetadata: {},
    })
      .catch((err: unknown) =>
        this.#logs.host(
          'error',
          `Function.${this.#trigger.functionName}`,
          `Timer invocation failed: ${(err as Error).message}`,
        ),
      )
      .finally(() => this.#arm());
  }

  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    await this.#current;
  }
}

/** The next occurrence after a time: a six-field NCRONTAB expression (five fields too), or hh:mm:ss. */
export function schedule(expression: string, timeZone: string): (after: Date) => Date | null {
  const interval = /^\d+(\.\d+)?:\d+(:\d+)?/.test(expression.trim()) ? parseTimeSpan(expression) : undefined;
  if (interval !== undefined) {
    if (interval <= 0) throw new Error(`The timer schedule "${expression}" is not a positive interval.`);
    return (after) => new Date(after.getTime() + interval);
  }
  // NCRONTAB requires both day-of-month and day-of-week to match.
  const cron = new Cron(expression, {
    timezone: timeZone,
    domAndDow: true,
    mode: '5-or-6-parts',
    paused: true,
  });
  return (after) => cron.nextRun(after);
}
