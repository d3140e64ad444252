// The host's admin API for running a function now: `POST /admin/functions/{name}` with the master
// key and a JSON body `{"input": "..."}` answers 202 Accepted and invokes the function in the
// background (AdminController.Invoke / FunctionsController.Invoke); 400 without a body, 404 for an
// unknown function, 401 without the master key. Any other `/admin` path answers 404 here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HostLogs } from './host-logs.js';
import type { Invoke } from './invoker.js';
import type { FunctionMetadata, RpcTypedData } from './protocol.js';
import { equalsIgnoreCase } from './routing/route-template.js';
import { timerInfo } from './timer-trigger.js';

const MAX_BODY_BYTES = 1024 * 1024;

export interface AdminContext {
  functions: () => FunctionMetadata[];
  invoke: Invoke;
  logs: HostLogs;
  /** Writes an empty answer with the host's common headers. */
  answer: (res: ServerResponse, status: number) => void;
}

export async function handleAdmin(
  req: IncomingMessage,
  res: ServerResponse,
  path: string[],
  isAdmin: boolean,
  admin: AdminContext,
): Promise<void> {
  const isInvoke = path.length === 3 && equalsIgnoreCase(path[1]!, 'functions') && req.method === 'POST';
  if (!isInvoke) return admin.answer(res, 404);
  if (!isAdmin) return admin.answer(res, 401);
  const name = path[2]!;
  const body = await readJson(req);
  if (body === undefined || body === null || typeof body !== 'object') return admin.answer(res, 400);
  const metadata = admin.functions().find((f) => equalsIgnoreCase(f.name, name));
  if (!metadata) return admin.answer(res, 404);
  admin.answer(res, 202);

  const input = (body as { input?: unknown }).input;
  const text =
    typeof input === 'string' ? input : input === undefined || input === null ? '' : JSON.stringify(input);
  const [bindingName, trigger] =
    Object.entries(metadata.bindings).find(([, b]) => /trigger$/i.test(b.type ?? '')) ?? [];
  if (!bindingName || !trigger) return;
  const type = String(trigger.type).toLowerCase();
  if (type === 'httptrigger') {
    admin.logs.host(
      'error',
      `Function.${metadata.name}`,
      `The admin API does not run HTTP-triggered functions; call the function's route instead.`,
    );
    return;
  }
  let data: RpcTypedData = { string: text };
  const triggerMetadata: Record<string, RpcTypedData> = {};
  if (type === 'timertrigger') data = { json: timerInfo(null, false) };
  if (type === 'queuetrigger') triggerMetadata.QueueTrigger = { string: text };
  await admin
    .invoke({
      functionName: metadata.name,
      reason: 'This function was programmatically called via the host APIs.',
      inputData: [{ name: bindingName, data }],
      triggerMetadata,
    })
    .catch(() => undefined);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}
