// Reads a topic and decides whether it changed. A change is a different MD5 or a different
// length of the body (the rssCloud reference rule), or a topic never read before. Conditional
// GETs (ETag / Last-Modified) spare the publisher a full response when nothing changed.
import { createHash } from 'node:crypto';
import type { HttpClient } from '../http.js';
import { newTopic, type Topic } from '../model.js';
import type { Content } from '../notifier/sender.js';
import type { Store } from '../store/store.js';

export const FETCH_MAX_REDIRECTS = 5;

export interface CheckResult {
  topic: Topic;
  changed: boolean;
  /** Present when changed. */
  content?: Content;
}

export class FetchFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FetchFailed';
  }
}

export class TopicChecker {
  constructor(
    private readonly http: HttpClient,
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** Fetches the topic and records the check. Throws FetchFailed or OutboundError. */
  async fetch(url: string): Promise<CheckResult> {
    const prev = (await this.store.getTopic(url)) ?? newTopic(url);
    const headers: Record<string, string> = {};
    if (prev.lastHash !== '') {
      if (prev.etag) headers['if-none-match'] = prev.etag;
      if (prev.lastModified) headers['if-modified-since'] = prev.lastModified;
    }
    const res = await this.http.request('fetch', url, { method: 'GET', headers, maxRedirects: FETCH_MAX_REDIRECTS });
    if (res.status === 304 && prev.lastHash !== '') {
      const topic = { ...prev, ctChecks: prev.ctChecks + 1, whenLastCheck: this.now() };
      await this.store.putTopic(topic);
      return { topic, changed: false };
    }
    if (res.status < 200 || res.status >= 300) throw new FetchFailed(`HTTP ${res.status}`);
    return this.compare(prev, res.body, res.headers['content-type'] ?? 'application/octet-stream', {
      etag: res.headers['etag'],
      lastModified: res.headers['last-modified'],
    });
  }

  /** Records content a publisher pushed itself (an authenticated fat ping). */
  async accept(url: string, body: Buffer, contentType: string): Promise<CheckResult> {
    const prev = (await this.store.getTopic(url)) ?? newTopic(url);
    return this.compare(prev, body, contentType, {});
  }

  private async compare(
    prev: Topic,
    body: Buffer,
    contentType: string,
    validators: { etag?: string | undefined; lastModified?: string | undefined },
  ): Promise<CheckResult> {
    const now = this.now();
    const hash = createHash('md5').update(body).digest('hex');
    const changed = prev.lastHash === '' || hash !== prev.lastHash || body.length !== prev.lastSize;
    const topic: Topic = { ...prev, ctChecks: prev.ctChecks + 1, whenLastCheck: now };
    if (validators.etag !== undefined) topic.etag = validators.etag;
    if (validators.lastModified !== undefined) topic.lastModified = validators.lastModified;
    if (changed) {
      topic.lastHash = hash;
      topic.lastSize = body.length;
      topic.ctUpdates++;
      topic.whenLastUpdate = now;
      topic.version++;
      topic.contentType = contentType;
    }
    await this.store.putTopic(topic);
    if (!changed) return { topic, changed };
    return { topic, changed, content: { topic: topic.url, version: topic.version, body, contentType } };
  }
}
