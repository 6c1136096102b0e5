// The rssCloud REST face: POST /pleaseNotify and POST /ping, answered as XML or JSON by
// Accept, with the exact words real clients compare. Legacy paths and trailing slashes work
// because express routing is case-insensitive and non-strict.
import type { NextFunction, Request, Response, Router } from 'express';
import type { Hub } from '../lib/hub.js';
import { escapeXml } from '../lib/xml-escape.js';
import type { Logger } from '../lib/log.js';
import { HUB_FAILURE_WORDS, RSSCLOUD_WORDS, messageFor, unreadableBodyMessage, type HubError } from '../lib/messages.js';
import { bodyErrorStatus, formParams, originalPath, rawBody } from './body.js';
import { answerPreflight, cors } from './cors.js';
import { clientAddress, rateLimit } from './rate.js';
import { sendString } from './reply.js';
import type { RateLimiter } from '../lib/rate-limit.js';

const PLEASE_NOTIFY_PATHS = ['/pleaseNotify', '/rsscloud/pleaseNotify'];
const PING_PATHS = ['/ping', '/rsscloud/ping'];

type Root = 'notifyResult' | 'result';

/** XML unless the client prefers JSON; an unknown Accept gets XML rather than 406. */
function sendResult(req: Request, res: Response, root: Root, success: boolean, msg: string, status = 200): void {
  if (req.accepts(['xml', 'json']) === 'json') {
    sendString(res, status, 'application/json; charset=utf-8', JSON.stringify({ success, msg }));
    return;
  }
  sendString(res, status, 'text/xml; charset=utf-8', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<${root} success="${success}" msg="${escapeXml(msg)}"/>\n`);
}

export interface RssCloudFaceOptions {
  maxBodyBytes: number;
  pleaseNotifyRate: RateLimiter;
  pingRate: RateLimiter;
  log: Logger;
}

export function rssCloudRoutes(router: Router, hub: Hub, opts: RssCloudFaceOptions): void {
  const body = rawBody(opts.maxBodyBytes);
  const refuse = (root: Root) => (req: Request, res: Response, msg: string) => sendResult(req, res, root, false, msg, res.statusCode);

  answerPreflight(router, [...PLEASE_NOTIFY_PATHS, ...PING_PATHS]);

  router.post(PLEASE_NOTIFY_PATHS, cors, rateLimit(opts.pleaseNotifyRate, refuse('notifyResult')), body, async (req, res) => {
    const form = formParams(req);
    const missing = ['port', 'path', 'protocol'].filter((k) => !form.get(k));
    if (missing.length > 0) return fail(req, res, 'notifyResult', { code: 'missing_params', missing }, 'subscribe');
    // A Set: the body may carry thousands of url parameters before the count is refused.
    const urls = new Set<string>();
    for (const [key, value] of form) {
      if (key.toLowerCase().startsWith('url') && value !== '') urls.add(value);
    }
    const domain = form.get('domain') ?? '';
    const notifyProcedure = form.get('notifyProcedure');
    const error = await hub.pleaseNotify({
      protocol: form.get('protocol') ?? '',
      port: form.get('port') ?? '',
      path: form.get('path') ?? '',
      urls: [...urls],
      ...(domain !== '' && { domain }),
      callerAddress: clientAddress(req),
      ...(notifyProcedure !== null && { notifyProcedure }),
    });
    if (error) return fail(req, res, 'notifyResult', error, 'subscribe');
    sendResult(req, res, 'notifyResult', true, RSSCLOUD_WORDS.subscribed);
  });

  router.post(PING_PATHS, cors, rateLimit(opts.pingRate, refuse('result')), body, async (req, res) => {
    const url = formParams(req).get('url');
    if (!url) return fail(req, res, 'result', { code: 'missing_params', missing: ['url'] }, 'ping');
    const error = await hub.ping(url);
    if (error) return fail(req, res, 'result', error, 'ping');
    sendResult(req, res, 'result', true, RSSCLOUD_WORDS.pinged);
  });

  // A body the parser refused (too large, bad charset) still gets rssCloud's own reply shape.
  // Four parameters: express takes only such a function for an error handler.
  router.use(PLEASE_NOTIFY_PATHS, (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (!bodyError(err, req, res, 'notifyResult')) hubFailure(err, req, res, 'notifyResult', opts.log);
  });
  router.use(PING_PATHS, (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (!bodyError(err, req, res, 'result')) hubFailure(err, req, res, 'result', opts.log);
  });
}

/**
 * A failure of the hub itself (its store on a full disk) gets rssCloud's reply shape too: a
 * client reads success="false" and the words, where a text/plain 500 was a parse error to it.
 */
function hubFailure(err: unknown, req: Request, res: Response, root: Root, log: Logger): void {
  // In this handler, mounted at the face's paths, req.path is what follows them ("/").
  log.error('request failed', { path: originalPath(req), error: err instanceof Error ? err.message : String(err) });
  if (res.headersSent) return void res.destroy();
  sendResult(req, res, root, false, HUB_FAILURE_WORDS, 500);
}

function fail(req: Request, res: Response, root: Root, error: HubError, context: 'subscribe' | 'ping'): void {
  sendResult(req, res, root, false, messageFor(error, context));
}

/** Answers a body the parser refused; false when `err` is not about the body. */
function bodyError(err: unknown, req: Request, res: Response, root: Root): boolean {
  const status = bodyErrorStatus(err, res);
  if (status === undefined) return false;
  sendResult(req, res, root, false, unreadableBodyMessage(status), status);
  return true;
}
