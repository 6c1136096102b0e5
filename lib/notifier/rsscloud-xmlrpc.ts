// rssCloud xml-rpc: call the subscriber's notifyProcedure with the topic URL as one untyped
// value, as the reference server does. The RSS 2.0 cloud spec says the procedure must return
// true, so a fault or a false result is a failed delivery, not a delivered one.
import type { HttpClient } from '../http.js';
import type { Subscription } from '../model.js';
import { buildMethodCall, parseMethodResponse } from '../xmlrpc.js';
import { RSSCLOUD_MAX_REDIRECTS } from './rsscloud-post.js';
import { REPLY_MAX_BYTES, type Content, type DeliveryOutcome, type Sender } from './sender.js';
import { describeError, refused } from './outcome.js';

const XML = { 'content-type': 'text/xml' };

export class RssCloudXmlRpcSender implements Sender {
  /** The last call built: a fan-out sends the same one to every subscriber of a procedure. */
  private last = { key: '', body: '' };

  constructor(private readonly http: HttpClient) {}

  async deliver(sub: Subscription, content: Pick<Content, 'topic'>, target?: URL): Promise<DeliveryOutcome> {
    const procedure = sub.notifyProcedure ?? '';
    const key = `${procedure}\n${content.topic}`;
    if (this.last.key !== key) this.last = { key, body: buildMethodCall(procedure, [content.topic], { untypedStrings: true }) };
    try {
      const res = await this.http.request('callback', target ?? sub.callback, {
        method: 'POST',
        headers: XML,
        body: this.last.body,
        maxRedirects: RSSCLOUD_MAX_REDIRECTS,
        readAtMost: REPLY_MAX_BYTES,
      });
      if (res.status < 200 || res.status >= 300) return refused(res);
      // A methodResponse of `true` is a few hundred bytes and a fault a few more; a longer reply is
      // no methodResponse a client sends, so it is judged as any reply that cannot be read (by its
      // status), unparsed: parsing megabytes of XML held the hub's one thread for seconds.
      if (res.truncated) return { ok: true, status: res.status };
      return judgeReply(res.body.toString('utf8'), res.status);
    } catch (e) {
      return { ok: false, error: describeError(e) };
    }
  }
}

/**
 * The reply nearly every subscriber sends: `true`, as the spec asks, in the canonical layout
 * (whitespace between tags and an XML declaration allowed). Recognised without building a
 * document; anything else, faults and `false` included, goes through the full parser.
 */
const PLAIN_TRUE =
  /^\s*(?:<\?xml[^>]*\?>\s*)?<methodResponse>\s*<params>\s*<param>\s*<value>\s*<boolean>1<\/boolean>\s*<\/value>\s*<\/param>\s*<\/params>\s*<\/methodResponse>\s*$/;

/**
 * A methodResponse that holds a fault, whatever the fault holds. The `xmlrpc` package's server
 * answers a handler that failed with an Error by `<fault><value><struct/></value></fault>` (the
 * Error has no faultCode or faultString of its own): no fault the spec describes, yet a failure.
 */
const FAULT = /^\s*(?:<\?xml[^>]*\?>\s*)?<methodResponse>\s*<fault[\s>]/;

function judgeReply(xml: string, status: number): DeliveryOutcome {
  if (xml.length < 512 && PLAIN_TRUE.test(xml)) return { ok: true, status };
  let reply;
  try {
    reply = parseMethodResponse(xml);
  } catch (e) {
    if (FAULT.test(xml)) return { ok: false, status, error: `fault: ${e instanceof Error ? e.message : String(e)}` };
    // A 2xx whose body is not a methodResponse: old clients answer with anything; the
    // call reached them, and only a fault or false is a stated refusal.
    return { ok: true, status };
  }
  if (reply.kind === 'fault') return { ok: false, status, error: `fault ${reply.code}: ${clip(reply.message)}` };
  if (reply.value === false) return { ok: false, status, error: 'the procedure returned false' };
  return { ok: true, status };
}

/**
 * How much of a subscriber's fault string is kept, for the delivery's log line: a subscriber
 * faulting with 60 KB of words (the most of a reply the hub reads) made each of its deliveries
 * a 60 KB line, as many as it had subscriptions at every ping of their topics.
 */
const FAULT_WORDS_MAX = 200;

function clip(words: string): string {
  // Not through the middle of a surrogate pair.
  return words.length <= FAULT_WORDS_MAX ? words : `${words.slice(0, FAULT_WORDS_MAX).replace(/[\uD800-\uDBFF]$/, '')}…`;
}
