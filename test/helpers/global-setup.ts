import type { TestProject } from 'vitest/node';
import { startLocalStorage } from '../../src/devhost/storage.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A connection string for one Azurite (Blob and Queue) shared by the whole run. */
    storage: string;
  }
}

/** One Azurite for every test file: each stack uses a queue (and container) of its own in it. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const storage = await startLocalStorage();
  project.provide('storage', storage.connectionString);
  return () => storage.close();
}
