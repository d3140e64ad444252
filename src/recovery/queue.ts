import type { QueueClient } from '@azure/storage-queue';
import type { CleanupSettings } from '../settings.js';
import type { QueueTask } from './tasks.js';

/** Where clean-up tasks wait to be done: durable, seen by every instance of the app. */
export interface CleanupQueue {
  /** Puts a task on the queue, to become visible after `delayMs` (whole seconds, at least 0). */
  send(task: QueueTask, delayMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Longest a message may wait before it is visible, as Azure Storage queues allow. */
const MAX_DELAY_S = 7 * 24 * 3600;

/**
 * An Azure Storage queue (the app's `AzureWebJobsStorage` account; Azurite locally). Messages are
 * base64-encoded JSON, as the Functions queue trigger expects by default (`messageEncoding`).
 */
export class StorageCleanupQueue implements CleanupQueue {
  readonly #settings: CleanupSettings;
  readonly #timeoutMs: number;
  #queue: Promise<QueueClient> | undefined;

  constructor(settings: CleanupSettings, timeoutMs: number) {
    this.#settings = settings;
    this.#timeoutMs = timeoutMs;
  }

  async send(task: QueueTask, delayMs: number): Promise<void> {
    const queue = await this.#ready();
    const visibilityTimeout = Math.min(MAX_DELAY_S, Math.max(0, Math.ceil(delayMs / 1000)));
    await queue.sendMessage(Buffer.from(JSON.stringify(task)).toString('base64'), {
      visibilityTimeout,
      messageTimeToLive: -1,
    });
  }

  async close(): Promise<void> {}

  #ready(): Promise<QueueClient> {
    this.#queue ??= this.#open().catch((err: unknown) => {
      this.#queue = undefined;
      throw err;
    });
    return this.#queue;
  }

  async #open(): Promise<QueueClient> {
    // Loaded on first use: nothing to clean up, nothing to load.
    const sdk = await import('@azure/storage-queue');
    const options = {
      retryOptions: {
        maxTries: 3,
        retryDelayInMs: 200,
        maxRetryDelayInMs: 2_000,
        tryTimeoutInMs: this.#timeoutMs,
      },
    };
    const { connectionString, queueServiceUrl, queueName } = this.#settings;
    let client: QueueClient;
    if (connectionString) {
      client = sdk.QueueServiceClient.fromConnectionString(connectionString, options).getQueueClient(
        queueName,
      );
    } else {
      const { DefaultAzureCredential } = await import('@azure/identity');
      client = new sdk.QueueServiceClient(
        queueServiceUrl!.href,
        new DefaultAzureCredential(),
        options,
      ).getQueueClient(queueName);
    }
    await client.createIfNotExists();
    return client;
  }
}
