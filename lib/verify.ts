// Verification of intent, for both protocols: proof that whoever asked for a subscription
// controls the callback. Both use a fresh random challenge that must come back byte for byte.
import { randomBytes } from 'node:crypto';
import { OutboundError, type HttpClient } from './http.js';
import type { Logger } from './log.js';
import { callbackHost, withQuery } from './model.js';
import { describeError } from './notifier/outcome.js';
import { Limiter } from './notifier/limiter.js';

/** rssCloud follows redirects on the challenge GET, as the reference server does. */
const RSSCLOUD_CHALLENGE_REDIRECTS = 5;

function newChallenge(): string {
  return randomBytes(16).toString('hex');
}

export interface WebSubIntent {
  callback: string;
  mode: 'subscribe' | 'unsubscribe';
  topic: string;
  leaseSeconds?: number;
  verifyToken?: string;
}

/**
 * How a subscriber answered a verification of intent: with the challenge, with anything else
 * (a refusal: 404, a wrong body, a redirect), or not at all (no connection, no answer in time,
 * a 5xx or 429: the callback is down or busy for now, which says nothing of its intent);
 * 'bad_certificate': its https server showed a certificate the hub refused (expired, untrusted,
 * for other names), so it was not asked; or 'closed': the hub stopped before this one's turn
 * came, so its subscriber was not asked.
 */
export type IntentAnswer = 'verified' | 'refused' | 'unreachable' | 'bad_certificate' | 'closed';

export class Verifier {
  /**
   * WebSub verifications and denials in flight at once; the rest wait their turn (in the store
   * already, and capped by WEBSUB_MAX_PENDING_VERIFICATIONS). Without it, a flood of subscribe
   * requests naming slow callbacks on as many hosts opened a socket to each at once, up to the
   * 20,000 pending allowed: past most descriptor limits, failing every fetch and delivery with them.
   */
  private readonly turns: Limiter;
  private closed = false;

  constructor(
    private readonly http: HttpClient,
    private readonly log: Logger,
    concurrency: number,
    /**
     * WEBSUB_TIMEOUT_MS, for WebSub's GETs (rssCloud's keep REQUEST_TIMEOUT_MS). Several subscriber
     * libraries (Flask-WebSub, websub-client in Go) forget their pending request as they answer
     * its first GET: one answered after the hub gave up was asked again, answered 404 (final),
     * and its subscriber believed it was subscribed while the hub did not.
     */
    private readonly websubTimeoutMs: number,
  ) {
    this.turns = new Limiter(concurrency);
  }

  /** rssCloud with `domain`: GET callback?url=…&challenge=…; the body must equal the challenge. */
  async rssCloudChallenge(callback: string, resource: string): Promise<boolean> {
    const challenge = newChallenge();
    const target = withQuery(callback, new URLSearchParams({ url: resource, challenge }));
    return (await this.expectChallenge(target, resource, challenge, RSSCLOUD_CHALLENGE_REDIRECTS, 'rssCloud')) === 'verified';
  }

  /** WebSub REC §5.3: only a 2xx whose body is exactly the challenge verifies; no redirects. */
  async webSubIntent(intent: WebSubIntent): Promise<IntentAnswer> {
    const challenge = newChallenge();
    const params = new URLSearchParams({ 'hub.mode': intent.mode, 'hub.topic': intent.topic, 'hub.challenge': challenge });
    if (intent.leaseSeconds !== undefined) params.set('hub.lease_seconds', String(intent.leaseSeconds));
    if (intent.verifyToken !== undefined) params.set('hub.verify_token', intent.verifyToken);
    // Past close, the ones still waiting their turn give it up at once: asked one after another,
    // a stopping hub waited out every slow callback in the queue (thousands of request timeouts,
    // a slot's width at a time) before it stopped. Their requests stay stored for the next start.
    return this.turns.run(async () => (this.closed ? 'closed' : this.expectChallenge(withQuery(intent.callback, params), intent.topic, challenge, 0, 'WebSub', this.websubTimeoutMs)));
  }

  /** The hub stops: verifications not yet sent are not sent (see webSubIntent). */
  close(): void {
    this.closed = true;
  }

  /** WebSub REC §5.2: tell the subscriber the hub refused its subscription. Best effort. */
  async webSubDenied(callback: string, topic: string, reason: string): Promise<void> {
    const params = new URLSearchParams({ 'hub.mode': 'denied', 'hub.topic': topic, 'hub.reason': reason });
    try {
      // Its answer says nothing the hub uses: none of its body is kept.
      await this.turns.run(() => this.http.request('callback', withQuery(callback, params), { method: 'GET', timeoutMs: this.websubTimeoutMs, readAtMost: 0 }));
    } catch (e) {
      this.log.info('denial not delivered', { host: callbackHost(callback), topic, error: describeError(e) });
    }
  }

  /**
   * Logged with the callback's host and the topic, never the URL asked (its query holds the
   * challenge, and often the subscriber's token): the operator asked why a subscriber is not
   * subscribed searches the log for its host.
   */
  private async expectChallenge(target: string, topic: string, challenge: string, maxRedirects: number, what: string, timeoutMs?: number): Promise<IntentAnswer> {
    const host = callbackHost(target);
    try {
      // Read no further than one byte past the challenge: that is enough to tell an exact echo
      // from anything else. Read whole, an answer that echoed the challenge and went on sending
      // held its turn until WEBSUB_TIMEOUT_MS (then counted as unreachable and asked again), or
      // was buffered up to MAX_RESPONSE_BYTES: 5 MB for each of the 256 sent at once.
      const readAtMost = Buffer.byteLength(challenge) + 1;
      const res = await this.http.request('callback', target, { method: 'GET', maxRedirects, readAtMost, ...(timeoutMs !== undefined && { timeoutMs }) });
      if (res.status >= 200 && res.status < 300 && res.body.equals(Buffer.from(challenge))) return 'verified';
      const busy = res.status >= 500 || res.status === 429;
      this.log.info(`${what} verification ${busy ? 'not answered' : 'refused'}`, { host, topic, status: res.status });
      return busy ? 'unreachable' : 'refused';
    } catch (e) {
      const certificate = e instanceof OutboundError && e.code === 'certificate';
      this.log.info(`${what} verification failed${certificate ? ': certificate refused' : ''}`, { host, topic, error: describeError(e) });
      if (certificate) return 'bad_certificate';
      // An address the hub may not call, or an answer too large, is the callback's final word.
      return e instanceof OutboundError && (e.code === 'timeout' || e.code === 'network') ? 'unreachable' : 'refused';
    }
  }
}
