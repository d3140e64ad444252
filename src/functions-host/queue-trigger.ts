// Queue triggers as the Storage Queues extension runs them (QueueListener, QueueProcessor): poll the
// queue, back off up to maxPollingInterval while it is empty, hand each message to the function with
// the message's metadata, delete it on success; on failure make it visible again after
// visibilityTimeout, and once it was dequeued maxDequeueCount times move it to `<queue>-poison`.
import { QueueClient, type DequeuedMessageItem } from '@azure/storage-queue';
import type { QueuesOptions } from './config.js';
import type { HostLogs } from './host-logs.js';
import type { Invoke } from './invoker.js';
import type { FunctionMetadata, RpcTypedData } from './protocol.js';

/**
 * How long a received message stays invisible while the function runs (renewed at half of it): the
 * extension's 10 minutes. An instance that dies mid-message leaves it invisible that long.
 */
export const RECEIVE_VISIBILITY_SECONDS = 600;
/** The listener's shortest wait between polls of an empty queue (QueuePollingIntervals.Minimum). */
const MIN_POLLING_INTERVAL_MS = 100;

export interface QueueTrigger {
  functionName: string;
  bindingName: string;
  queueName: string;
  /** The app setting naming the storage account. */
  connection: string;
}

export function queueTriggers(
  functions: FunctionMetadata[],
  env: Record<string, string | undefined>,
): QueueTrigger[] {
  const triggers: QueueTrigger[] = [];
  for (const metadata of functions) {
    for (const [bindingName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== 'queuetrigger') continue;
      triggers.push({
        functionName: metadata.name,
        bindingName,
        queueName: resolveSettings(typeof binding.queueName === 'string' ? binding.queueName : '', env),
        connection:
          typeof binding.connection === 'string' && binding.connection
            ? binding.connection
            : 'AzureWebJobsStorage',
      });
    }
  }
  return triggers;
}

/** `%name%` in binding properties names an app setting. */
export function resolveSettings(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/%([^%]+)%/g, (whole, name: string) => env[name] ?? whole);
}

export interface QueueListenerOptions {
  trigger: QueueTrigger;
  env: Record<string, string | undefined>;
  queues: QueuesOptions;
  /** Caps the wait between polls of an empty queue (host.json maxPollingInterval otherwise). */
  maxPollMs?: number;
  /** How long a message being processed stays invisible (RECEIVE_VISIBILITY_SECONDS by default). */
  receiveVisibilitySeconds?: number;
  invoke: Invoke;
  logs: HostLogs;
}

export class QueueListener {
  readonly #options: QueueListenerOptions;
  readonly #queue: QueueClient;
  readonly #poison: QueueClient;
  readonly #category: string;
  #running = true;
  #inFlight = 0;
  #wake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #done: Promise<void>;
  readonly #processing = new Set<Promise<void>>();

  get #receiveVisibility(): number {
    return this.#options.receiveVisibilitySeconds ?? RECEIVE_VISIBILITY_SECONDS;
  }

  constructor(options: QueueListenerOptions) {
    this.#options = options;
    const { trigger, env } = options;
    this.#category = `Function.${trigger.functionName}`;
    const connectionString = env[trigger.connection];
    if (!connectionString) {
      throw new Error(
        `Storage account connection string '${trigger.connection}' does not exist: set the app setting ${trigger.connection} (the function ${trigger.functionName} is not listening).`,
      );
    }
    this.#queue = new QueueClient(connectionString, trigger.queueName);
    this.#poison = new QueueClient(connectionString, `${trigger.queueName}-poison`);
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    const { queues } = this.#options;
    const maxInterval = Math.min(queues.maxPollingIntervalMs, this.#options.maxPollMs ?? Infinity);
    let delay = Math.min(MIN_POLLING_INTERVAL_MS, maxInterval);
    while (this.#running) {
      let messages: DequeuedMessageItem[] = [];
      try {
        const response = await this.#queue.receiveMessages({
          numberOfMessages: queues.batchSize,
          visibilityTimeout: this.#receiveVisibility,
        });
        messages = response.receivedMessageItems;
      } catch (err) {
        // A queue that does not exist yet is an empty queue.
        if ((err as { statusCode?: number }).statusCode !== 404) {
          this.#options.logs.host(
            'error',
            this.#category,
            `Polling queue '${this.#options.trigger.queueName}' failed: ${(err as Error).message}`,
          );
        }
      }
      if (!this.#running) return;
      for (const message of messages) this.#track(this.#process(message));
      if (messages.length > 0) {
        delay = Math.min(MIN_POLLING_INTERVAL_MS, maxInterval);
        // Fetch the next batch once at most newBatchThreshold messages are still being processed.
        while (this.#running && this.#inFlight > queues.newBatchThreshold) await this.#sleep(Infinity);
        continue;
      }
      await this.#sleep(delay);
      delay = Math.min(delay * 2, maxInterval);
    }
  }

  #track(processing: Promise<void>): void {
    this.#inFlight++;
    this.#processing.add(processing);
    void processing.finally(() => {
      this.#inFlight--;
      this.#processing.delete(processing);
      this.#wake?.();
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = () => {
        clearTimeout(this.#timer);
        this.#wake = undefined;
        resolve();
      };
      if (ms !== Infinity) this.#timer = setTimeout(() => this.#wake?.(), ms);
    });
  }

  async #process(message: DequeuedMessageItem): Promise<void> {
    const { trigger, queues } = this.#options;
    let popReceipt = message.popReceipt;
    if (message.dequeueCount > queues.maxDequeueCount) {
      await this.#movePoison(message, popReceipt);
      return;
    }
    // Keep the message invisible while the function runs, as the listener's visibility updates do.
    const renew = setInterval(
      () => {
        this.#queue
          .updateMessage(message.messageId, popReceipt, undefined, this.#receiveVisibility)
          .then((updated) => (popReceipt = updated.popReceipt ?? popReceipt))
          .catch(() => undefined);
      },
      (this.#receiveVisibility * 1000) / 2,
    );
    let succeeded = false;
    try {
      const text = decodeMessage(message.messageText, queues.messageEncoding);
      const result = await this.#options.invoke({
        functionName: trigger.functionName,
        reason: `New queue message detected on '${trigger.queueName}'.`,
        inputData: [{ name: trigger.bindingName, data: { string: text } }],
        triggerMetadata: queueTriggerMetadata(message, text),
      });
      succeeded = result.succeeded;
    } catch (err) {
      this.#options.logs.host(
        'error',
        this.#category,
        `Message '${message.messageId}' could not be processed: ${(err as Error).message}`,
        {
          messageId: message.messageId,
        },
      );
    } finally {
      clearInterval(renew);
    }
    try {
      if (succeeded) {
        await this.#queue.deleteMessage(message.messageId, popReceipt);
      } else if (message.dequeueCount >= queues.maxDequeueCount) {
        await this.#movePoison(message, popReceipt);
      } else {
        await this.#queue.updateMessage(
          message.messageId,
          popReceipt,
          undefined,
          Math.round(queues.visibilityTimeoutMs / 1000),
        );
      }
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      // 404 or a popReceipt mismatch: the message is gone or someone else took it over.
      if (status !== 404 && status !== 400) {
        this.#options.logs.host(
          'error',
          this.#category,
          `Completing message '${message.messageId}' failed: ${(err as Error).message}`,
          {
            messageId: message.messageId,
          },
        );
      }
    }
  }

  async #movePoison(message: DequeuedMessageItem, popReceipt: string): Promise<void> {
    const { trigger, queues } = this.#options;
    this.#options.logs.host(
      'warning',
      this.#category,
      `Message has reached MaxDequeueCount of ${queues.maxDequeueCount}. Moving message to queue '${trigger.queueName}-poison'.`,
      { messageId: message.messageId, queueName: trigger.queueName },
    );
    await this.#poison.createIfNotExists();
    // The message body as stored (still encoded), as the host copies it.
    await this.#poison.sendMessage(message.messageText);
    await this.#queue.deleteMessage(message.messageId, popReceipt);
    this.#options.logs.host(
      'debug',
      this.#category,
      `Moved message '${message.messageId}' to queue '${trigger.queueName}-poison'.`,
      {
        messageId: message.messageId,
        queueName: trigger.queueName,
      },
    );
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#done;
    await Promise.allSettled([...this.#processing]);
  }
}

/** The queue trigger's binding data: QueueTrigger, DequeueCount, Id, PopReceipt and the times. */
function queueTriggerMetadata(message: DequeuedMessageItem, text: string): Record<string, RpcTypedData> {
  return {
    QueueTrigger: { string: text },
    DequeueCount: { json: String(message.dequeueCount) },
    ExpirationTime: { json: JSON.stringify(dateTimeOffset(message.expiresOn)) },
    Id: { string: message.messageId },
    InsertionTime: { json: JSON.stringify(dateTimeOffset(message.insertedOn)) },
    NextVisibleTime: { json: JSON.stringify(dateTimeOffset(message.nextVisibleOn)) },
    PopReceipt: { string: message.popReceipt },
  };
}

/** A DateTimeOffset as Json.NET writes it: ISO 8601, no fraction when it is zero, `+00:00`. */
function dateTimeOffset(date: Date): string {
  return date
    .toISOString()
    .replace(/\.000Z$/, 'Z')
    .replace(/Z$/, '+00:00');
}

export class MessageDecodingError extends Error {}

function decodeMessage(text: string, encoding: 'base64' | 'none'): string {
  if (encoding === 'none') return text;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new MessageDecodingError(
      'The message is not valid base64 (host.json queues.messageEncoding is "base64").',
    );
  }
  return Buffer.from(text, 'base64').toString('utf8');
}
