import { createSecretKey } from 'node:crypto';
import { signedHeaders } from '../src/cosmos/signer.js';
import { DEMO } from '../src/emulator/seed.js';
import { EMULATOR_KEY } from '../src/emulator/server.js';

const key = createSecretKey(Buffer.from(EMULATOR_KEY, 'base64'));
const documentLink = `dbs/${DEMO.db}/colls/${DEMO.coll}/docs/${DEMO.doc}`;

/** The attachments collection of the seeded document, as a URL path. */
export const ATTACHMENTS_PATH = `/${documentLink}/attachments`;
/** The same on the bridge. */
export const BRIDGE_ATTACHMENTS_PATH = `/api${ATTACHMENTS_PATH}`;
export const PARTITION_KEY = JSON.stringify([DEMO.doc]);

/** Headers for "Create Attachment" straight to the sink, signed with the emulator's public key as any Cosmos client would. */
export function signedCreateHeaders(): Record<string, string> {
  return {
    ...signedHeaders(key, { verb: 'POST', resourceType: 'attachments', resourceLink: documentLink }),
    'x-ms-documentdb-partitionkey': PARTITION_KEY,
  };
}
