// WebSub content distribution (REC §7): the topic's body and Content-Type byte for byte, one
// combined Link header, and X-Hub-Signature only when the subscriber gave a secret.
// Redirects are not followed: the REC counts every non-2xx as a failure.
import type { SignatureAlgorithm } from '../config.js';
import type { HttpClient } from '../http.js';
import type { Subscription } from '../model.js';
import { sign } from '../signature.js';
import type { Content, DeliveryOutcome, Sender } from './sender.js';
import { describeError } from './outcome.js';

export function linkHeader(hubUrl: string, topic: string): string {
  return `<${hubUrl}>; rel="hub", <${topic}>; rel="self"`;
}

export class WebSubContentSender implements Sender {
  constructor(
    private readonly http: HttpClient,
    private readonly hubUrl: string,
    private readonly algorithm: SignatureAlgorithm,
  ) {}

  /** The Link header of the last topic sent: the same for every subscriber of a fan-out. */
  private last = { topic: '', link: '' };

  async deliver(sub: Subscription, content: Content, target?: URL): Promise<DeliveryOutcome> {
    if (this.last.topic !== content.topic) this.last = { topic: content.topic, link: linkHeader(this.hubUrl, content.topic) };
    const headers: Record<string, string> = {
      'content-type': content.contentType,
      link: this.last.link,
    };
    if (sub.secret !== undefined) headers['x-hub-signature'] = sign(this.algorithm, sub.secret, content.body);
    try {
      const res = await this.http.request('callback', target ?? sub.callback, { method: 'POST', headers, body: content.body });
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
      return { ok: false, status: res.status, gone: res.status === 410, error: `HTTP ${res.status}` };
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}
