import type { QueueClient } from '@azure/storage-queue';
import type { Bridge } from '../bridge.js';
import { describeError, type Logger } from '../log.js';

export interface CleanupPoller {
  close(): Promise<void>;
}

/**
 * Runs the clean-up queue's consumer the way the Functions host runs a queue trigger: takes messages
 * as they become visible, hands each to the bridge, deletes it when done, and lets it come back (its
 * dequeue count rising) when not, until the fifth attempt sends it to `<queue>-poison`.
 */
export async function startCleanupPoller(bridge: Bridge, log: Logger, pollMs = 200): Promise<CleanupPoller> {
  const { QueueServiceClient } = await import('@azure/storage-queue');
  const { connectionString, queueName } = bridge.settings.cleanup;
  const service = QueueServiceClient.fromConnectionString(connectionString!);
  const queue: QueueClient = service.getQueueClient(queueName);
  const poison = service.getQueueClient(`${queueName}-poison`);
  await queue.createIfNotExists();
  let stopped = false;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { receivedMessageItems } = await queue.receiveMessages({
          numberOfMessages: 16,
          visibilityTimeout: 30,
        });
        await Promise.all(
          receivedMessageItems.map(async (item) => {
            const text = Buffer.from(item.messageText, 'base64').toString('utf8');
            try {
              await bridge.cleanUp(text, { dequeueCount: item.dequeueCount, log });
              await queue.deleteMessage(item.messageId, item.popReceipt);
            } catch {
              if (item.dequeueCount >= 5) {
                await poison.createIfNotExists();
                await poison.sendMessage(item.messageText);
                await queue.deleteMessage(item.messageId, item.popReceipt);
              } else await queue.updateMessage(item.messageId, item.popReceipt, undefined, 0);
            }
          }),
        );
        if (receivedMessageItems.length > 0) continue;
      } catch (err) {
        if (!stopped) log.warn('clean-up poller: the queue could not be read', describeError(err));
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, pollMs).unref();
      });
    }
  })();
  return {
    async close() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
