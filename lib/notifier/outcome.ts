import { OutboundError } from '../http.js';

/** A short, secret-free description of why an outbound call failed, for counters and logs. */
export function describeError(e: unknown): string {
  if (e instanceof OutboundError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}
