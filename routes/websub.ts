// The WebSub face at /websub: subscribe and unsubscribe (202, then verification of intent),
// publish (hub.url and/or hub.topic, repeated, as an array or in a list; 204 as in 0.3), authenticated fat
// pings, and hub discovery for readers. Refusals are 4xx with a plain-text reason (REC §5.1.2).
// Forms come urlencoded or multipart, with parameters in the query string too, as PubSubHubbub
// clients still send them.
import type { NextFunction, Request, Response, Router } from 'express';
import type { Hub } from '../lib/hub.js';
import { DEFAULT_HUB_PATH } from '../lib/model.js';
import {
  BUSY_RETRY_AFTER_SECONDS,
  WEBSUB_WORDS,
  badParameterMessage,
  messageFor,
  unreadableBodyMessage,
  webSubAcceptedMessage,
  webSubFormTooLargeMessage,
  webSubSecretTooLongMessage,
  webSubUrlAcceptedLine,
  webSubUrlRefusedLine,
  webSubVerifyTokenTooLongMessage,
} from '../lib/messages.js';
import { bodyBuffer, bodyErrorStatus, formParams, isFormRequest, isMultipartRequest, multipartParams, originalPath, parseHttpUrl, queryParams, rawBody } from './body.js';
import { answerPreflight, cors } from './cors.js';
import { sendText } from './reply.js';
import { rateLimit } from './rate.js';
import type { RateLimiter } from '../lib/rate-limit.js';

/** REC §5.1: hub.secret MUST be less than 200 bytes. */
const MAX_SECRET_BYTES = 199;

/**
 * PubSubHubbub 0.3's hub.verify_token sets no bound, and a pending request keeps it until its
 * callback answers: 63 KB ones (a form's worth) held 60 MB of memory and as much of the store per
 * thousand requests whose callbacks never answer, 1.2 GB at WEBSUB_MAX_PENDING_VERIFICATIONS.
 * The tokens clients send are a few dozen characters; a JWT fits.
 */
const MAX_VERIFY_TOKEN_BYTES = 1024;

/**
 * The largest form (subscribe, unsubscribe, publish): a few URLs need a few KB. Only a fat ping,
 * which is not a form, needs WEBSUB_MAX_BODY_BYTES; a form that size, easily sent compressed,
 * cost ~200 ms of the hub's one thread to decode.
 */
const MAX_FORM_BYTES = 64 * 1024;

export interface WebSubFaceOptions {
  maxBodyBytes: number;
  rate: RateLimiter;
}

export function webSubRoutes(router: Router, hub: Hub, opts: WebSubFaceOptions): void {
  const refuse = (_req: Request, res: Response, msg: string): void => sendText(res, res.statusCode, msg);

  answerPreflight(router, ['/websub']);
  router.post('/websub', cors, rateLimit(opts.rate, refuse), refuseUnread, rawBody(opts.maxBodyBytes), async (req, res) => {
    const query = queryParams(req);
    if (query.get('hub.mode') === 'publish' && !isForm(req)) return fatPing(hub, req, res, query);
    // The other parameters may come in the query string (see withQuery), never the secret: a URL
    // is written to the access logs of the proxies and servers it passes, and whoever reads them
    // could sign deliveries the subscriber takes as the hub's. Refused rather than ignored, which
    // left a subscriber that checks signatures dropping every unsigned delivery, unaware. (An
    // empty one is no secret, as in the body.)
    if (query.getAll('hub.secret').some((s) => s !== '')) return sendText(res, 400, WEBSUB_WORDS.secretInUrl);
    // Compressed, a form's size is known only now.
    if (bodyBuffer(req).length > MAX_FORM_BYTES) return sendText(res, 413, FORM_TOO_LARGE);
    const body = isMultipartRequest(req) ? await multipartParams(req) : formParams(req);
    if (body === null) return sendText(res, 400, WEBSUB_WORDS.multipartUnreadable);
    const form = withQuery(body, query);
    const mode = form.get('hub.mode');
    if (mode === 'subscribe' || mode === 'unsubscribe') return subscription(hub, res, form, mode, originalPath(req));
    if (mode === 'publish') return publish(hub, res, form);
    return sendText(res, 400, WEBSUB_WORDS.unknownMode);
  });

  router.get('/websub', cors, rateLimit(opts.rate, refuse), async (req, res) => {
    const query = queryParams(req);
    if (query.get('hub.mode') !== 'discover') {
      return sendText(res, 400, WEBSUB_WORDS.howToUse);
    }
    const topic = parseHttpUrl(query.get('hub.topic'));
    if (typeof topic !== 'string') return sendText(res, 400, badParameterMessage('hub.topic', topic.problem));
    // Every other door refuses a topic over MAX_URL_LENGTH unread; this one fetched it (up to
    // Node's 16 KB of request line) and echoed it back.
    const tooLong = hub.checkUrls([topic]);
    if (tooLong) return sendText(res, 400, messageFor(tooLong, 'ping'));
    const found = await hub.discover(topic);
    // The request was fine but names a topic this hub cannot read: a 4xx, since no 5xx may come
    // from what a stranger's URL does.
    if ('error' in found) return res.status(422).json({ topic, error: found.error });
    res.json(found);
  });

  router.use('/websub', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = bodyErrorStatus(err, res);
    if (status === undefined) return next(err);
    sendText(res, status, unreadableBodyMessage(status));
  });
}

const FORM_TOO_LARGE = webSubFormTooLargeMessage(MAX_FORM_BYTES);

/**
 * A form in either encoding. PubSubHubbub clients in PHP that give curl their fields as an array
 * send multipart/form-data (to Google's hub, which reads it, as do the hubs built on PHP or WebOb).
 */
function isForm(req: Request): boolean {
  return isFormRequest(req) || isMultipartRequest(req);
}

/**
 * The body's parameters, then the query string's. Google's reference hub read both alike, so
 * publishers ping with `POST /hub?hub.mode=publish&hub.url=…` and no body; a parameter in the
 * body wins where one value is read, and hub.url is taken from both.
 */
function withQuery(body: URLSearchParams, query: URLSearchParams): URLSearchParams {
  const all = new URLSearchParams(body);
  for (const [key, value] of query) all.append(key, value);
  return all;
}

/**
 * Refuses what the headers alone decide, before the body is read: a body that is neither a form
 * nor a fat ping, or an uncompressed form declared over MAX_FORM_BYTES. Each was read whole (up
 * to WEBSUB_MAX_BODY_BYTES) first, and a client that sent Expect: 100-continue was asked for it.
 */
function refuseUnread(req: Request, res: Response, next: NextFunction): void {
  const form = isForm(req);
  if (!form) return queryParams(req).get('hub.mode') === 'publish' ? next() : sendText(res, 415, WEBSUB_WORDS.notAForm);
  const identity = (req.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity';
  if (identity && Number(req.headers['content-length']) > MAX_FORM_BYTES) return sendText(res, 413, FORM_TOO_LARGE);
  next();
}

async function subscription(hub: Hub, res: Response, form: URLSearchParams, mode: 'subscribe' | 'unsubscribe', path: string): Promise<void> {
  const callback = parseHttpUrl(form.get('hub.callback'));
  if (typeof callback !== 'string') return sendText(res, 400, badParameterMessage('hub.callback', callback.problem));
  const topic = parseHttpUrl(form.get('hub.topic'));
  if (typeof topic !== 'string') return sendText(res, 400, badParameterMessage('hub.topic', topic.problem));
  // Only a subscription keeps a secret. An empty one is none: a form that always sends the
  // field must not get its deliveries signed with an empty key, which anyone can forge.
  const secret = mode === 'subscribe' ? form.get('hub.secret') || undefined : undefined;
  if (secret !== undefined && Buffer.byteLength(secret, 'utf8') > MAX_SECRET_BYTES) {
    return sendText(res, 400, webSubSecretTooLongMessage(Buffer.byteLength(secret, 'utf8')));
  }
  let leaseSeconds: number | undefined;
  const lease = form.get('hub.lease_seconds');
  // REC §5.1: a lease on an unsubscribe is ignored. A lease of 0 is none asked for: older clients
  // send it to mean "no expiry" (PubSubHubbub 0.3 subscriptions could be permanent; Twitch's
  // clients sent it for the longest lease), which no hub grants under the REC. The default lease,
  // named in the verification, serves them; a 400 left them with no subscription at all. So is
  // a negative whole number: NewsBlur, moving a feed to the hub or topic URL its pushes name,
  // subscribes again for what is left of its old lease, negative once that lease has run out,
  // and a 400 stopped its pushes for that feed for good.
  if (mode === 'subscribe' && lease !== null && lease !== '' && !/^(0+|-\d+)$/.test(lease)) {
    if (!/^\d+$/.test(lease)) return sendText(res, 400, WEBSUB_WORDS.leaseNotWhole);
    // However long, it is a valid request: the hub grants at most WEBSUB_LEASE_MAX_SECONDS.
    leaseSeconds = Math.min(Number(lease), Number.MAX_SAFE_INTEGER);
  }
  const verifyToken = form.get('hub.verify_token') ?? undefined;
  if (verifyToken !== undefined && Buffer.byteLength(verifyToken, 'utf8') > MAX_VERIFY_TOKEN_BYTES) {
    return sendText(res, 400, webSubVerifyTokenTooLongMessage(MAX_VERIFY_TOKEN_BYTES, Buffer.byteLength(verifyToken, 'utf8')));
  }
  // hub.verify (required by PubSubHubbub 0.3) and hub.verify_token (dropped by the REC) mark a
  // 0.3 subscriber. Those still running (GNU social's and StatusNet's, the Superfeedr PHP library,
  // scripts written for Google's hub) check only sha1= signatures and drop any other delivery
  // while answering 2xx, so theirs are signed with sha1, which the REC allows a hub to choose.
  const legacy = mode === 'subscribe' && (form.has('hub.verify') || form.has('hub.verify_token'));
  const error = await hub.webSubRequest({
    mode,
    topic,
    callback,
    ...(secret !== undefined && { secret }),
    ...(leaseSeconds !== undefined && { leaseSeconds }),
    ...(verifyToken !== undefined && { verifyToken }),
    ...(legacy && { signatureAlgorithm: 'sha1' as const }),
    // Deliveries name the hub by the URL the subscriber used (websub.rocks checks rel=hub is it).
    ...(mode === 'subscribe' && path !== DEFAULT_HUB_PATH && { hubPath: path }),
  });
  if (error?.code === 'hub_busy') res.setHeader('Retry-After', String(BUSY_RETRY_AFTER_SECONDS));
  if (error) return sendText(res, error.code === 'hub_busy' ? 503 : 400, messageFor(error, 'subscribe'));
  sendText(res, 202, webSubAcceptedMessage(mode));
}

/**
 * The parameters a publish names its URLs with: hub.url or hub.topic, repeated, or as an array
 * the way form encoders write one: `hub.url[]` (Rails, PHP by hand, Superfeedr's instructions)
 * or indexed, `hub.url[0]` (PHP's http_build_query, node's `request` and `qs`).
 */
const PUBLISH_URL_KEY = /^hub\.(url|topic)(\[\d*\])?$/;

async function publish(hub: Hub, res: Response, form: URLSearchParams): Promise<void> {
  const raw = [...form].filter(([key]) => PUBLISH_URL_KEY.test(key)).map(([, value]) => value);
  // Superfeedr lets publishers list URLs with commas (its instructions said semicolons until
  // they said commas); a comma or semicolon inside one URL stays, since only one that starts a
  // new http(s) URL separates two.
  const candidates = [...new Set(raw.flatMap((v) => v.split(/[,;](?=\s*https?:\/\/)/i)).map((v) => v.trim()).filter(Boolean))];
  if (candidates.length === 0) return sendText(res, 400, WEBSUB_WORDS.publishNeedsUrl);
  // The count limit covers every URL asked for, usable or not: a long list is refused whole.
  const tooMany = hub.checkPublishUrls(candidates);
  if (tooMany?.code === 'too_many_urls') return sendText(res, 400, messageFor(tooMany, 'ping'));
  const accepted: string[] = [];
  const lines: string[] = [];
  for (const c of candidates) {
    const url = parseHttpUrl(c);
    if (typeof url === 'string') {
      accepted.push(url);
      lines.push(webSubUrlAcceptedLine(url));
    } else {
      lines.push(webSubUrlRefusedLine(c, url.problem));
    }
  }
  if (accepted.length === 0) return sendText(res, 400, lines.join('\n'));
  const tooMuch = hub.checkPublishUrls(accepted);
  if (tooMuch) return sendText(res, 400, messageFor(tooMuch, 'ping'));
  // Answered once the reads owed are stored (see Hub.publish).
  await hub.publish(accepted);
  // PubSubHubbub 0.3 §7.1, the only written contract of this ping: 204 once the URLs are
  // accepted. Its PHP publisher library (pubsubhubbub/php-publisher, in Debian and Composer)
  // counts nothing else as success, so a 202 made every ping look failed to its users and
  // printed our reply into their pages. A refused URL still gets the 202 with a line per URL,
  // so the publisher learns which one and why.
  if (accepted.length === candidates.length) {
    res.status(204).end();
    return;
  }
  sendText(res, 202, lines.join('\n'));
}

async function fatPing(hub: Hub, req: Request, res: Response, query: URLSearchParams): Promise<void> {
  // A body without any signature is no fat ping gone wrong but a publish that carries a body:
  // a GitHub Pages webhook set to JSON (what GitHub's own guides pick) posts its push event to
  // the publish URL people write from Superfeedr's instructions. Refused as unsigned content,
  // nothing was delivered; taken as the publish the query names, the hub reads the topic itself
  // and uses nothing of the body. A signature that fails still gets the 403: someone meant to push.
  if (req.get('x-hub-signature') === undefined) return publish(hub, res, query);
  const topic = parseHttpUrl(query.get('hub.topic') ?? query.get('hub.url'));
  if (typeof topic !== 'string') return sendText(res, 400, badParameterMessage('hub.topic', topic.problem));
  const tooLong = hub.checkUrls([topic]);
  if (tooLong) return sendText(res, 400, messageFor(tooLong, 'ping'));
  const contentType = req.headers['content-type'] ?? 'application/octet-stream';
  const error = await hub.publishContent(topic, bodyBuffer(req), contentType, req.get('x-hub-signature'));
  if (error) return sendText(res, 403, messageFor(error, 'ping'));
  sendText(res, 202, webSubUrlAcceptedLine(topic));
}
