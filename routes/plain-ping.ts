// POST /ping answered without express, in the one shape nearly every ping takes: a form of
// declared length, nothing forwarded, compressed or awaited, XML wanted. Express's request
// handling (its router, body parser and their listeners) was ~10 % of a changed-feed ping's
// main thread (278 -> 251 µs; bench/compare.ts, 2026-12-05). Anything else, and every other
// path, goes to the app, whose rssCloud route answers as this does: the same words, headers,
// limits and log line, from the same functions (routes/rsscloud.ts, cors.ts, rate.ts,
// body.ts). A new concern for pings goes into those functions, or makes isPlain send the shapes
// it touches to the app (docs/adr/0009-a-ping-answered-before-express.md).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Hub } from '../lib/hub.js';
import type { Logger } from '../lib/log.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { formFields } from './body.js';
import { corsHeaders } from './cors.js';
import { PING_PATHS, answerPing, failed, writeResult } from './rsscloud.js';
import { forwardedAddress, refusal } from './rate.js';

export interface PlainPingOptions {
  maxBodyBytes: number;
  /** The rssCloud ping route's own limiter: one bucket per client, whichever way its pings go. */
  rate: RateLimiter;
  log: Logger;
  /** What the app does with every request on arrival: its log line and metric (lib/app.ts). */
  arrived: (req: IncomingMessage, res: ServerResponse, path: string, ip: string) => void;
}

/** The route's paths as sent, not as express matches them (any case, a trailing slash): those go to the app. */
const PATHS = new Set(PING_PATHS);

/** Returns a request listener that answers a plain ping and says so, or returns false. */
export function plainPing(hub: Hub, opts: PlainPingOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST' || req.url === undefined || !PATHS.has(req.url) || !isPlain(req, opts.maxBodyBytes)) return false;
    const path = req.url;
    // Without X-Forwarded-For, the address express's req.ip gives, TRUST_PROXY or not.
    const ip = forwardedAddress(req.socket.remoteAddress ?? '');
    opts.arrived(req, res, path, ip);
    corsHeaders(res);
    const refused = refusal(opts.rate, res, () => ip);
    if (refused !== undefined) {
      // Unread, as the app refuses it: Node reads and drops the rest of the body.
      writeResult(res, false, 'result', false, refused, res.statusCode);
      return true;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A client that goes before its body is all sent is answered by nobody: the socket is gone.
    req.on('error', () => {});
    req.on('end', () => {
      answer(hub, Buffer.concat(chunks), req.headers['content-type']).then(
        ({ success, msg }) => writeResult(res, false, 'result', success, msg),
        (err: unknown) => failed(err, path, res, false, 'result', opts.log),
      );
    });
    return true;
  };
}

/** Async, so that a form refused while read (too many fields) is a rejection, answered by `failed` as the app answers it. */
async function answer(hub: Hub, body: Buffer, contentType: string | undefined): Promise<{ success: boolean; msg: string }> {
  return answerPing(hub, formFields(body, contentType).get('url'));
}

/**
 * A form of declared length within the limit, uncompressed, not waiting for 100 Continue, not
 * forwarded (express works out a forwarded client's address by TRUST_PROXY), from a client
 * that wants XML or anything (`req.accepts` gives XML to both).
 */
function isPlain(req: IncomingMessage, maxBodyBytes: number): boolean {
  const h = req.headers;
  const accept = h.accept;
  return (
    h['content-type'] === 'application/x-www-form-urlencoded' &&
    Number(h['content-length']) <= maxBodyBytes &&
    h['transfer-encoding'] === undefined &&
    h['content-encoding'] === undefined &&
    h.expect === undefined &&
    h['x-forwarded-for'] === undefined &&
    (accept === undefined || accept === '*/*')
  );
}
