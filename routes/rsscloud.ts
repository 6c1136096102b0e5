// The rssCloud REST face: POST /pleaseNotify and POST /ping, answered as XML or JSON by
// Accept, with the exact words real clients compare. Legacy paths and trailing slashes work
// because express routing is case-insensitive and non-strict.
import type { NextFunction, Request, Response, Router } from 'express';
import type { ServerResponse } from 'node:http';
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
export const PING_PATHS = ['/ping', '/rsscloud/ping'];

export type Root = 'notifyResult' | 'result';

/** XML unless the client prefers JSON; an unknown Accept gets XML rather than 406. */
function sendResult(req: Request, res: Response, root: Root, success: boolean, msg: string, status = 200): void {
  writeResult(res, wantsJson(req), root, success, msg, status);
}

function wantsJson(req: Request): boolean {
  return req.accepts(['xml', 'json']) === 'json';
}

/** rssCloud's reply, as JSON or as XML. */
export function writeResult(res: ServerResponse, json: boolean, root: Root, success: boolean, msg: string, status = 200): void {
  if (json) {
    sendString(res, status, 'application/json; charset=utf-8', JSON.stringify({ success, msg }));
    return;
  }
  sendString(res, status, 'text/xml; charset=utf-8', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<${root} success="${success}" msg="${escapeXml(msg)}"/>\n`);
}

/** What a ping of `url` (null: none given) is answered, in rssCloud's words. */
export async function answerPing(hub: Hub, url: string | null): Promise<{ success: boolean; msg: string }> {
  if (!url) return { success: false, msg: messageFor({ code: 'missing_params', missing: ['url'] }, 'ping') };
  const error = await hub.ping(url);
  return error ? { success: false, msg: messageFor(error, 'ping') } : { success: true, msg: RSSCLOUD_WORDS.pinged };
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
    const { success, msg } = await answerPing(hub, formParams(req).get('url'));
    sendResult(req, res, 'result', success, msg);
  });

  // A body the parser refused (too large, bad charset) still gets rssCloud's own reply shape.
  // Four parameters: express takes only such a function for an error handler. In it, mounted at
  // the face's paths, req.path is what follows them ("/").
  router.use(PLEASE_NOTIFY_PATHS, (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    failed(err, originalPath(req), res, wantsJson(req), 'notifyResult', opts.log);
  });
  router.use(PING_PATHS, (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    failed(err, originalPath(req), res, wantsJson(req), 'result', opts.log);
  });
}

/**
 * A request that failed, in rssCloud's reply shape: a body the parser refused (too large, bad
 * charset: its 4xx), or the hub itself failing (its store on a full disk: 500, logged with
 * `path`), where a text/plain 500 was a parse error to a client.
 */
export function failed(err: unknown, path: string, res: ServerResponse, json: boolean, root: Root, log: Logger): void {
  const status = bodyErrorStatus(err, res);
  if (status !== undefined) return writeResult(res, json, root, false, unreadableBodyMessage(status), status);
  log.error('request failed', { path, error: err instanceof Error ? err.message : String(err) });
  if (res.headersSent) return void res.destroy();
  writeResult(res, json, root, false, HUB_FAILURE_WORDS, 500);
}

function fail(req: Request, res: Response, root: Root, error: HubError, context: 'subscribe' | 'ping'): void {
  sendResult(req, res, root, false, messageFor(error, context));
}
