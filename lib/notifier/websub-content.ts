// WebSub content distribution (REC §7): the topic's body and Content-Type byte for byte, one
// combined Link header, and X-Hub-Signature only when the subscriber gave a secret, with the
// subscription's own algorithm (sha1 for PubSubHubbub 0.3 readers) or WEBSUB_SIGNATURE_ALGORITHM.
// Redirects are not followed: the REC counts every non-2xx as a failure.
import type { SignatureAlgorithm } from '../config.js';
import type { HttpClient } from '../http.js';
import type { Subscription } from '../model.js';
import { sign } from '../signature.js';
import { REPLY_MAX_BYTES, type Content, type DeliveryOutcome, type Sender } from './sender.js';
import { describeError, refused } from './outcome.js';

/**
 * Self first: the REC fixes no order, and a subscriber library still in use (npm `pubsubhubbub`)
 * reads only the first link, as the topic; with the hub first it answered every delivery 400.
 */
function linkHeader(hubUrl: string, topic: string): string {
  return `<${linkTarget(topic)}>; rel="self", <${linkTarget(hubUrl)}>; rel="hub"`;
}

/**
 * A URL as a Link target (RFC 8288: a URI-Reference inside <>): characters a URI cannot hold
 * (space, <, >, ", controls, non-ASCII), which a topic accepted as typed may contain, are
 * percent-encoded as UTF-8, so one cannot end the target early or break the header. A URL that
 * is already a valid URI is unchanged, and so still equal to the topic its subscriber asked for.
 */
function linkTarget(url: string): string {
  return url.replace(/[^A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]/gu, (c) => {
    let out = '';
    for (const byte of Buffer.from(c, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return out;
  });
}

export class WebSubContentSender implements Sender {
  constructor(
    private readonly http: HttpClient,
    private readonly hubUrl: string,
    private readonly algorithm: SignatureAlgorithm,
    /** WEBSUB_TIMEOUT_MS: a subscriber often handles the content before it answers. */
    private readonly timeoutMs: number,
  ) {}

  /** The Link header of the last topic sent: the same for every subscriber of a fan-out. */
  private last = { topic: '', link: '' };

  async deliver(sub: Subscription, content: Content, target?: URL): Promise<DeliveryOutcome> {
    if (this.last.topic !== content.topic) this.last = { topic: content.topic, link: linkHeader(this.hubUrl, content.topic) };
    const headers: Record<string, string> = {
      'content-type': content.contentType,
      link: this.last.link,
    };
    if (sub.secret !== undefined) headers['x-hub-signature'] = sign(sub.signatureAlgorithm ?? this.algorithm, sub.secret, content.body);
    try {
      const res = await this.http.request('callback', target ?? sub.callback, { method: 'POST', headers, body: content.body, readAtMost: REPLY_MAX_BYTES, timeoutMs: this.timeoutMs });
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
      return { ...refused(res), gone: res.status === 410 };
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}
