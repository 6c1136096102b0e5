// The compatibility test API (../shared/protocols/rsscloud.md, last section), mounted only when
// ENABLE_TEST_API=true so that the community's rssCloud e2e suite, and ours, can seed and
// inspect the store. Times are ISO strings on this wire; the store keeps epoch milliseconds.
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Hub } from '../lib/hub.js';
import type { Operator } from '../lib/operator.js';
import { isRssCloudProtocol, newTopic, type Protocol, type Subscription, type Topic } from '../lib/model.js';
import type { Store } from '../lib/store/store.js';
import { readsBody } from './body.js';

type Json = Record<string, unknown>;

interface ResourceJson {
  url: string;
  lastHash: string;
  lastSize: number;
  ctChecks: number;
  whenLastCheck: string;
  ctUpdates: number;
  whenLastUpdate: string;
}

interface SubscriptionJson {
  url: string;
  protocol: Protocol;
  notifyProcedure?: string;
  ctUpdates: number;
  ctErrors: number;
  ctConsecutiveErrors: number;
  whenCreated: string;
  whenLastUpdate: string | null;
  whenLastError: string | null;
  whenExpires: string;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

function resourceJson(t: Topic): ResourceJson {
  return {
    url: t.url,
    lastHash: t.lastHash,
    lastSize: t.lastSize,
    ctChecks: t.ctChecks,
    whenLastCheck: iso(t.whenLastCheck),
    ctUpdates: t.ctUpdates,
    whenLastUpdate: iso(t.whenLastUpdate),
  };
}

function subscriptionJson(s: Subscription): SubscriptionJson {
  return {
    url: s.callback,
    protocol: s.protocol,
    ...(s.protocol === 'xml-rpc' && { notifyProcedure: s.notifyProcedure ?? '' }),
    ctUpdates: s.ctUpdates,
    ctErrors: s.ctErrors,
    ctConsecutiveErrors: s.ctConsecutiveErrors,
    whenCreated: iso(s.whenCreated),
    whenLastUpdate: isoOrNull(s.whenLastUpdate),
    whenLastError: isoOrNull(s.whenLastError),
    whenExpires: iso(s.whenExpires),
  };
}

// ---- parsing the suite's JSON into typed values, once ------------------------------------

function obj(v: unknown, what: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} must be an object`);
  return v as Json;
}
function str(v: unknown, what: string, dflt?: string): string {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string') throw new Error(`${what} must be a string`);
  return v;
}
function num(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what} must be a number`);
  return v;
}
function time(v: unknown, what: string, dflt: number): number {
  if (v === undefined) return dflt;
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new Error(`${what} must be an ISO date`);
  return ms;
}
function timeOrNull(v: unknown, what: string): number | null {
  return v === undefined || v === null ? null : time(v, what, 0);
}

function parseResource(feedUrl: string, v: unknown, existing: Topic | undefined): Topic {
  const r = obj(v ?? {}, 'resource');
  const base = existing ?? newTopic(feedUrl);
  const topic: Topic = {
    ...base,
    url: feedUrl,
    lastHash: str(r.lastHash, 'lastHash', base.lastHash),
    lastSize: num(r.lastSize, 'lastSize', base.lastSize),
    ctChecks: num(r.ctChecks, 'ctChecks', base.ctChecks),
    whenLastCheck: time(r.whenLastCheck, 'whenLastCheck', base.whenLastCheck),
    ctUpdates: num(r.ctUpdates, 'ctUpdates', base.ctUpdates),
    whenLastUpdate: time(r.whenLastUpdate, 'whenLastUpdate', base.whenLastUpdate),
  };
  // The ETag and Last-Modified kept for conditional GETs describe the content last read. A
  // seeded hash or size describes other content, so the next read must be in full: otherwise
  // a 304 would hide the very change the suite set up.
  if (topic.lastHash !== base.lastHash || topic.lastSize !== base.lastSize) {
    delete topic.etag;
    delete topic.lastModified;
  }
  return topic;
}

function parseSubscription(feedUrl: string, v: unknown, now: number, leaseMs: number): Subscription {
  const s = obj(v, 'subscription');
  const protocol = str(s.protocol, 'protocol', 'http-post');
  if (!isRssCloudProtocol(protocol) && protocol !== 'websub') throw new Error(`protocol "${protocol}" is unknown`);
  const sub: Subscription = {
    topic: feedUrl,
    callback: str(s.url, 'url'),
    protocol,
    ctUpdates: num(s.ctUpdates, 'ctUpdates', 0),
    ctErrors: num(s.ctErrors, 'ctErrors', 0),
    ctConsecutiveErrors: num(s.ctConsecutiveErrors, 'ctConsecutiveErrors', 0),
    whenCreated: time(s.whenCreated, 'whenCreated', now),
    whenLastUpdate: timeOrNull(s.whenLastUpdate, 'whenLastUpdate'),
    whenLastError: timeOrNull(s.whenLastError, 'whenLastError'),
    whenExpires: time(s.whenExpires, 'whenExpires', now + leaseMs),
  };
  if (protocol === 'xml-rpc') sub.notifyProcedure = str(s.notifyProcedure, 'notifyProcedure', '');
  return sub;
}

export function testApiRoutes(router: Router, hub: Hub, store: Store, operator: Operator, leaseSeconds: number): void {
  // A browser sends Origin with every cross-origin POST, a no-cors fetch or a form among them,
  // and this API takes any body as JSON: without this, any web page its user opened could erase
  // a hub on their machine or network that has the API on, or seed it with subscriptions whose
  // callbacks never consented. The suites are no browser pages and send no Origin.
  router.use('/test', (req: Request, res: Response, next: NextFunction) => {
    const origin = req.get('origin');
    if (origin === undefined || sameOrigin(origin, req.get('host'))) return next();
    res.status(403).json({ success: false, error: 'the test API does not answer pages of other origins' });
  });
  router.use('/test', readsBody(16 * 1024 * 1024, express.json({ limit: '16mb', type: () => true })));

  const route = (path: string, handler: (body: Json) => Promise<Json>): void => {
    router.post(`/test/${path}`, async (req: Request, res: Response) => {
      try {
        const body = req.body === undefined ? {} : obj(req.body, 'body');
        res.json({ success: true, ...(await handler(body)) });
      } catch (e) {
        res.status(500).json({ success: false, error: e instanceof Error ? e.message : String(e) });
      }
    });
  };

  route('clear', async () => {
    await store.clear();
    // A suite's earlier tests of failing subscribers must not leave its host paused for the next.
    operator.retryHost();
    return {};
  });
  route('setResource', async (b) => {
    const feedUrl = str(b.feedUrl, 'feedUrl');
    await store.putTopic(parseResource(feedUrl, b.resource, await store.getTopic(feedUrl)));
    return {};
  });
  route('getResource', async (b) => {
    const t = await store.getTopic(str(b.feedUrl, 'feedUrl'));
    return { found: t !== undefined, resource: t ? resourceJson(t) : null };
  });
  route('setSubscriptions', async (b) => {
    const feedUrl = str(b.feedUrl, 'feedUrl');
    if (!Array.isArray(b.subscriptions)) throw new Error('subscriptions must be an array');
    const now = Date.now();
    const subs = b.subscriptions.map((s) => parseSubscription(feedUrl, s, now, leaseSeconds * 1000));
    for (const old of await store.subscriptionsOf(feedUrl)) await store.deleteSubscription(feedUrl, old.callback);
    // The suite seeds subscriptions of feeds it never pinged; a resource row keeps them visible.
    if (!(await store.getTopic(feedUrl))) await store.putTopic(newTopic(feedUrl));
    await Promise.all(subs.map((s) => store.putSubscription(s)));
    return {};
  });
  route('getSubscriptions', async (b) => {
    const feedUrl = str(b.feedUrl, 'feedUrl');
    const subs = await store.subscriptionsOf(feedUrl);
    return { found: subs.length > 0 || (await store.getTopic(feedUrl)) !== undefined, subscriptions: subs.map(subscriptionJson) };
  });
  route('getData', async () => {
    const data: Record<string, { resource: ResourceJson | null; subscriptions: SubscriptionJson[] }> = {};
    for (const t of await store.listTopics()) data[t.url] = { resource: resourceJson(t), subscriptions: [] };
    for (const s of await store.listSubscriptions()) {
      (data[s.topic] ??= { resource: null, subscriptions: [] }).subscriptions.push(subscriptionJson(s));
    }
    return { data };
  });
  route('removeExpired', async () => ({ result: await hub.removeExpired() }));
  // A body that is not JSON (or not an object) fails in the parser, before any route: it gets
  // the API's own error shape too, not the app's plain-text 500.
  router.use('/test', (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const detail = err instanceof Error ? err.message : String(err);
    res.status(500).json({ success: false, error: `the body must be a JSON object (${detail})` });
  });
}

/** Whether an Origin header names the host the request was sent to ("null" never does). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}
