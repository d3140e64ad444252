import type { Emulator } from './server.js';

/** The demo target the dev host prints a curl command for. */
export const DEMO = { db: 'demo', coll: 'items', doc: 'welcome' } as const;

/** Database `demo`, collection `items` (partition key `/id`), document `welcome`. */
export function seedDemo(emulator: Emulator): void {
  emulator.store.createDatabase({ id: DEMO.db });
  emulator.store.createCollection(DEMO.db, { id: DEMO.coll, partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument(
    DEMO.db,
    DEMO.coll,
    { id: DEMO.doc, text: 'Attach files to me.' },
    `["${DEMO.doc}"]`,
  );
}
