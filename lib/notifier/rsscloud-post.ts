// rssCloud http-post / https-post: a form POST `url=<topic>`, the same `url=<topic>` repeated in
// the query string. Redirects are followed and the same body re-POSTed (up to 5 hops), because
// subscribers such as FeedLand moved from http to https behind a 301 and a notification lost on a
// redirect is a notification lost.
import type { HttpClient } from '../http.js';
import { withQuery, type Subscription } from '../model.js';
import { REPLY_MAX_BYTES, type Content, type DeliveryOutcome, type Sender } from './sender.js';
import { describeError, refused } from './outcome.js';

export const RSSCLOUD_MAX_REDIRECTS = 5;

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

export class RssCloudPostSender implements Sender {
  /** The form of the last topic sent: a fan-out sends the same one to every subscriber. */
  private last = { topic: '', body: '' };

  constructor(private readonly http: HttpClient) {}

  /** `url=<topic>`, the body and the query of a notification. */
  private form(topic: string): string {
    if (this.last.topic !== topic) this.last = { topic, body: new URLSearchParams({ url: topic }).toString() };
    return this.last.body;
  }

  /**
   * Readers built on Dave Winer's davehttp read the request's query, not its body, unless they
   * ask for POST bodies: outlinecloud takes the changed resource from the query's `url` alone, so
   * with the topic only in the body it answered 200 and never learned what changed. The body
   * stays what every other reader and the reference server's tests read.
   */
  address(sub: Subscription): string {
    return withQuery(sub.callback, this.form(sub.topic));
  }

  async deliver(sub: Subscription, content: Pick<Content, 'topic'>, target?: URL): Promise<DeliveryOutcome> {
    const body = this.form(content.topic);
    try {
      const res = await this.http.request('callback', target ?? this.address(sub), {
        method: 'POST',
        headers: FORM,
        body,
        maxRedirects: RSSCLOUD_MAX_REDIRECTS,
        readAtMost: REPLY_MAX_BYTES,
      });
      return res.status >= 200 && res.status < 300 ? { ok: true, status: res.status } : refused(res);
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}
