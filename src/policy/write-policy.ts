/**
 * The access policy's former name, kept so that branches written against it still build once merged;
 * new code imports access-policy.ts.
 */
export { accessPolicy as writePolicy, type AccessPolicy as WritePolicy } from './access-policy.js';
