// rssCloud http-post / https-post: a form POST `url=<topic>`. Redirects are followed and the
// same body re-POSTed (up to 5 hops), because subscribers such as FeedLand moved from http to
// https behind a 301 and a notification lost on a redirect is a notification lost.
import type { HttpClient } from '../http.js';
import type { Subscription } from '../model.js';
import type { Content, DeliveryOutcome, Sender } from './sender.js';
import { describeError } from './outcome.js';

export const RSSCLOUD_MAX_REDIRECTS = 5;

export class RssCloudPostSender implements Sender {
  constructor(private readonly http: HttpClient) {}

  async deliver(sub: Subscription, content: Pick<Content, 'topic'>): Promise<DeliveryOutcome> {
    try {
      const res = await this.http.request('callback', sub.callback, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ url: content.topic }).toString(),
        maxRedirects: RSSCLOUD_MAX_REDIRECTS,
      });
      const ok = res.status >= 200 && res.status < 300;
      return ok ? { ok, status: res.status } : { ok, status: res.status, error: `HTTP ${res.status}` };
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}
