import type { FeedEntry } from '../feeds/entries.js';
import type { Subscription } from '../model.js';

/** One version of a topic's content, as the notifier hands it to a sender. */
export interface Content {
  topic: string;
  /** The topic's content version (a sequence, never a timestamp). */
  version: number;
  body: Buffer;
  contentType: string;
  /**
   * The new or changed entries when the topic is a feed, read when first asked for (most changes
   * are never shown to anyone); absent, or null from the call, for other content. Not persisted.
   */
  entries?: () => FeedEntry[] | null;
}

/**
 * The most of a subscriber's answer to a delivery that is read; a longer one is cut there (its
 * connection closed) and judged by its status. WebSub and rssCloud form POSTs read nothing of it,
 * an XML-RPC call only a methodResponse (a few hundred bytes). Read to MAX_RESPONSE_BYTES, a 2xx
 * longer than that failed as too large, and every delivery under way could hold that much.
 */
export const REPLY_MAX_BYTES = 64 * 1024;

export interface DeliveryOutcome {
  ok: boolean;
  status?: number;
  /** The subscriber said the subscription is over (WebSub 410 Gone). */
  gone?: boolean;
  /** How long the subscriber asked the hub to wait before trying again (Retry-After of a 429 or 503). */
  retryAfterMs?: number;
  error?: string;
}

/** One transport. Bare senders ignore the body and say only which topic changed. */
export interface Sender {
  /** `target` is `address(sub)` (else sub.callback) already parsed, when the caller has it. */
  deliver(sub: Subscription, content: Content, target?: URL): Promise<DeliveryOutcome>;
  /** The URL requested for sub when it is not its callback as written: a lane parses it once. */
  address?(sub: Subscription): string;
}
