// Small pieces shared by the WebSub suites: a topic server whose documents the test changes,
// a subscriber that answers verification of intent (or refuses it), Link header and
// X-Hub-Signature checks written independently of the hub's own code, and test-API calls.
import { createHmac } from 'node:crypto';
import type http from 'node:http';
import { Recorder, loopbackAddress, sleep, type Recorded } from './recorder.js';
import type { TestHub } from './hub.js';
import { until } from './until.js';

export interface TopicDoc {
  body: string | Buffer;
  contentType: string;
  /** Extra response headers (Link, ETag...). */
  headers?: Record<string, string>;
  /** With an ETag: answer 304 to a matching If-None-Match. */
  etag?: string;
  /** Answer this long after the request came, so that other requests can queue behind the read. */
  delayMs?: number;
}

/** A publisher's server: serves whatever document the test last set for a path, 404 otherwise. */
export class TopicServer {
  private readonly docs = new Map<string, TopicDoc>();

  private constructor(readonly rec: Recorder) {}

  static async start(): Promise<TopicServer> {
    // An address of its own: a port reused by a later server must not give it the topic URLs of
    // an earlier one, whose subscriptions a hub shared between tests still holds.
    const rec = await Recorder.start(undefined, loopbackAddress());
    const server = new TopicServer(rec);
    rec.handler = async (req, res) => {
      // The document as it is when asked for, answered after its delay.
      const doc = server.docs.get(req.path);
      if (doc?.delayMs !== undefined) await sleep(doc.delayMs);
      server.serve(req, res, doc);
    };
    return server;
  }

  url(path: string): string {
    return `${this.rec.url}${path}`;
  }

  set(path: string, doc: TopicDoc): string {
    this.docs.set(path, doc);
    return this.url(path);
  }

  /** GETs of one path. */
  fetches(path: string): Recorded[] {
    return this.rec.matching((r) => r.method === 'GET' && r.path === path);
  }

  close(): Promise<void> {
    return this.rec.close();
  }

  private serve(req: Recorded, res: http.ServerResponse, doc: TopicDoc | undefined): void {
    if (!doc) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const headers: Record<string, string> = { 'content-type': doc.contentType, ...doc.headers };
    if (doc.etag !== undefined) {
      headers['etag'] = doc.etag;
      if (req.headers['if-none-match'] === doc.etag) {
        res.writeHead(304, headers).end();
        return;
      }
    }
    res.writeHead(200, headers).end(doc.body);
  }
}

export type VerifyBehaviour = 'echo' | 'wrong' | 'decline' | 'huge';

/**
 * A WebSub subscriber. Verification GETs are answered with the next status of `verifyStatuses`
 * (0: the connection is closed without an answer; -1: no answer at all), then with the
 * challenge ('echo'), a different body ('wrong'), 404 ('decline') or the challenge followed by
 * 64 KB ('huge'); denial GETs with 200. Deliveries are answered
 * with the next status of `deliveryStatuses`, then 200, a refusal with `refusalHeaders` too;
 * `redirectTo` turns the answer into a 302.
 */
export class Subscriber {
  verify: VerifyBehaviour = 'echo';
  verifyStatuses: number[] = [];
  deliveryStatuses: number[] = [];
  refusalHeaders: Record<string, string> = {};
  redirectTo: string | undefined;

  private constructor(readonly rec: Recorder) {}

  static async start(): Promise<Subscriber> {
    const rec = await Recorder.start();
    const sub = new Subscriber(rec);
    rec.handler = (req, res) => sub.answer(req, res);
    return sub;
  }

  get url(): string {
    return this.rec.url;
  }

  callback(pathAndQuery = '/cb'): string {
    return `${this.rec.url}${pathAndQuery}`;
  }

  verifications(mode?: string, path?: string): Recorded[] {
    return this.rec.matching((r) => isVerification(r, mode) && (path === undefined || r.path === path));
  }

  waitVerifications(count: number, mode?: string, path?: string): Promise<Recorded[]> {
    return this.rec.waitFor(count, (r) => isVerification(r, mode) && (path === undefined || r.path === path));
  }

  deliveries(path?: string): Recorded[] {
    return this.rec.matching((r) => r.method === 'POST' && (path === undefined || r.path === path));
  }

  waitDeliveries(count: number, path?: string): Promise<Recorded[]> {
    return this.rec.waitFor(count, (r) => r.method === 'POST' && (path === undefined || r.path === path));
  }

  close(): Promise<void> {
    return this.rec.close();
  }

  private answer(req: Recorded, res: http.ServerResponse): void {
    if (req.method === 'GET') {
      const challenge = req.query.get('hub.challenge');
      const status = challenge === null ? undefined : this.verifyStatuses.shift();
      if (challenge === null) {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      } else if (status === 0) {
        res.socket?.destroy();
      } else if (status === -1) {
        // held until the hub gives up on it
      } else if (status !== undefined) {
        res.writeHead(status, { 'content-type': 'text/plain' }).end('not now');
      } else if (this.verify === 'decline') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('no such subscription');
      } else {
        const body = this.verify === 'echo' ? challenge : this.verify === 'huge' ? challenge + 'x'.repeat(64 * 1024) : `${challenge}-not`;
        res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
      }
      return;
    }
    if (this.redirectTo !== undefined) {
      res.writeHead(302, { location: this.redirectTo }).end();
      return;
    }
    const status = this.deliveryStatuses.shift() ?? 200;
    res.writeHead(status, { 'content-type': 'text/plain', ...(status >= 300 && this.refusalHeaders) }).end(status < 300 ? 'thanks' : 'no');
  }
}

function isVerification(r: Recorded, mode?: string): boolean {
  return r.method === 'GET' && r.query.has('hub.mode') && (mode === undefined || r.query.get('hub.mode') === mode);
}

/** Link header values → [url, rel] pairs; a minimal RFC 8288 reading, independent of lib/. */
export function parseLinks(header: string | string[] | undefined): { url: string; rel: string }[] {
  const value = Array.isArray(header) ? header.join(', ') : (header ?? '');
  const out: { url: string; rel: string }[] = [];
  for (const m of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";,]+)"?/i.exec(m[2] ?? '');
    if (rel?.[1] !== undefined) for (const r of rel[1].trim().split(/\s+/)) out.push({ url: m[1] ?? '', rel: r.toLowerCase() });
  }
  return out;
}

/** Whether `header` is `<alg>=<hex HMAC(secret, body)>` with one of the REC's algorithms. */
export function validSignature(header: string | string[] | undefined, secret: string, body: Buffer): boolean {
  if (typeof header !== 'string') return false;
  const m = /^(sha1|sha256|sha384|sha512)=([0-9a-f]+)$/.exec(header);
  if (!m) return false;
  return createHmac(m[1]!, Buffer.from(secret, 'utf8')).update(body).digest('hex') === m[2];
}

export function subscribe(hub: TestHub, form: Record<string, string>): Promise<Response> {
  return hub.postForm('/websub', { 'hub.mode': 'subscribe', ...form });
}

export function unsubscribe(hub: TestHub, form: Record<string, string>): Promise<Response> {
  return hub.postForm('/websub', { 'hub.mode': 'unsubscribe', ...form });
}

export function publish(hub: TestHub, ...urls: string[]): Promise<Response> {
  const form = new URLSearchParams({ 'hub.mode': 'publish' });
  for (const u of urls) form.append('hub.url', u);
  return hub.postForm('/websub', form);
}

export interface SubscriptionJson {
  url: string;
  protocol: string;
  ctUpdates: number;
  ctErrors: number;
  ctConsecutiveErrors: number;
  whenExpires: string;
  [k: string]: unknown;
}

export async function testApi<T = Record<string, unknown>>(hub: TestHub, path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(`${hub.url}/test/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`/test/${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

export async function subscriptionsOf(hub: TestHub, topic: string): Promise<SubscriptionJson[]> {
  const r = await testApi<{ subscriptions: SubscriptionJson[] }>(hub, 'getSubscriptions', { feedUrl: topic });
  return r.subscriptions;
}

/** Every piece of background work (verifications, fetches, first delivery attempts) has settled. */
export function settled(hub: TestHub): Promise<void> {
  return hub.hub.idle();
}

/** The bodies in a hub's outbox as text, oldest first. */
export async function outboxBodies(hub: TestHub): Promise<string[]> {
  return Promise.all((await hub.store.listOutbox()).map(async (e) => (await hub.store.getOutboxBody(e.topic, e.version))?.toString() ?? ''));
}

/** outboxBodies once `done` holds for them (10 s at most): the outbox changes behind the requests that cause it. */
export async function outboxWhen(hub: TestHub, done: (bodies: string[]) => boolean): Promise<string[]> {
  await until(async () => done(await outboxBodies(hub)));
  return outboxBodies(hub);
}
