import { OutboundError, retryAfterSeconds, type HttpResponse } from '../http.js';
import type { DeliveryOutcome } from './sender.js';

/** A short, secret-free description of why an outbound call failed, for counters and logs. */
export function describeError(e: unknown): string {
  if (e instanceof OutboundError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * A subscriber's answer that is not a 2xx, as a failed delivery; the Retry-After of a 429 or 503
 * kept as how long it asked the hub to wait (see the notifier's retries and lane rests).
 */
export function refused(res: Pick<HttpResponse, 'status' | 'headers'>): DeliveryOutcome {
  const outcome: DeliveryOutcome = { ok: false, status: res.status, error: `HTTP ${res.status}` };
  const wait = res.status === 429 || res.status === 503 ? retryAfterSeconds(res.headers['retry-after'], Date.now()) : undefined;
  if (wait !== undefined) outcome.retryAfterMs = wait * 1000;
  return outcome;
}
