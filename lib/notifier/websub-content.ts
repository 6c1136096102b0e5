// WebSub content distribution (REC §7): the topic's body and Content-Type byte for byte, one
// combined Link header, and X-Hub-Signature only when the subscriber gave a secret, with the
// subscription's own algorithm (sha1 for PubSubHubbub 0.3 readers) or WEBSUB_SIGNATURE_ALGORITHM.
// Redirects are not followed: the REC counts every non-2xx as a failure.
import type { SignatureAlgorithm } from '../config.js';
import type { HttpClient } from '../http.js';
import { DEFAULT_HUB_PATH, type Subscription } from '../model.js';
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
 * A URL as a Link target (RFC 8288: inside <>). Only what cannot stay there is percent-encoded
 * as UTF-8: controls, space, '"', '<', '>' (one ends the target early) and non-ASCII (not bytes
 * a header carries as written). The rest of a topic stays as its subscriber spelled it, '|', '^',
 * '{', '}', '`' and '\' included, which the URL standard leaves in a URL (in a query, all of
 * them): a subscriber may take rel=self as the topic it subscribed to, byte for byte (npm
 * `pubsubhubbub` keys its signature check by it), and `%7C` for its '|' failed every delivery.
 */
function linkTarget(url: string): string {
  return url.replace(/[^\x21\x23-\x3b\x3d\x3f-\x7e]/gu, (c) => {
    let out = '';
    for (const byte of Buffer.from(c, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    return out;
  });
}

export class WebSubContentSender implements Sender {
  constructor(
    private readonly http: HttpClient,
    /** PUBLIC_URL: the hub is named by it and the path each subscription was made through (Subscription.hubPath). */
    private readonly publicUrl: string,
    private readonly algorithm: SignatureAlgorithm,
    /** WEBSUB_TIMEOUT_MS: a subscriber often handles the content before it answers. */
    private readonly timeoutMs: number,
    /** Where bodies are signed: a BodyThread signs big ones on its worker thread. */
    private readonly bodies: { sign(algorithm: SignatureAlgorithm, secret: string, body: Buffer): Promise<string> } = { sign: async (...args) => sign(...args) },
  ) {}

  /**
   * The Link header of the last topic and hub path sent: the same for every subscriber of a
   * fan-out that subscribed through the same hub URL (nearly all of them).
   */
  private last = { topic: '', hubPath: '', link: '' };

  async deliver(sub: Subscription, content: Content, target?: URL): Promise<DeliveryOutcome> {
    const hubPath = sub.hubPath ?? DEFAULT_HUB_PATH;
    if (this.last.topic !== content.topic || this.last.hubPath !== hubPath) {
      this.last = { topic: content.topic, hubPath, link: linkHeader(this.publicUrl + hubPath, content.topic) };
    }
    const headers: Record<string, string> = {
      'content-type': content.contentType,
      link: this.last.link,
    };
    try {
      if (sub.secret !== undefined) headers['x-hub-signature'] = await this.bodies.sign(sub.signatureAlgorithm ?? this.algorithm, sub.secret, content.body);
      const res = await this.http.request('callback', target ?? sub.callback, { method: 'POST', headers, body: content.body, readAtMost: REPLY_MAX_BYTES, timeoutMs: this.timeoutMs });
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
      return { ...refused(res), gone: res.status === 410 };
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}
