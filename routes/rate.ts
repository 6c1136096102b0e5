import type { NextFunction, Request, Response } from 'express';
import type { ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { rateLimitedMessage } from '../lib/messages.js';
import { rateKey, type RateLimiter } from '../lib/rate-limit.js';

const addresses = new WeakMap<Request, string>();

/**
 * The address a request came from: the socket's, or the forwarded one behind TRUST_PROXY.
 * Worked out once per request: express's req.ip parses X-Forwarded-For and asks the trust
 * function again each time it is read, and the request log, the rate limit and pleaseNotify
 * all ask.
 */
export function clientAddress(req: Request): string {
  let address = addresses.get(req);
  if (address === undefined) {
    address = forwardedAddress(req.ip ?? req.socket.remoteAddress ?? '');
    addresses.set(req, address);
  }
  return address;
}

/**
 * An X-Forwarded-For entry as the address it names. Azure Application Gateway and App Service,
 * and IIS ARR, write `a.b.c.d:port` and `[v6]:port`: read as written, every connection's
 * source port made a client of its own (rate limits and SSE_MAX_PER_CLIENT never held) and no
 * rssCloud callback could be built from it. An unbracketed IPv6 address is taken whole: its
 * last group cannot be told from a port.
 */
export function forwardedAddress(entry: string): string {
  if (isIP(entry) !== 0) return entry;
  const m = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(entry) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry);
  return m && isIP(m[1]!) !== 0 ? m[1]! : entry;
}

/**
 * Refuses a request over its client's rate with 429 and Retry-After, before its body is read;
 * `reject` renders the refusal in the face's own format.
 */
export function rateLimit(
  limiter: RateLimiter,
  reject: (req: Request, res: Response, message: string) => void,
): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    const refused = refusal(limiter, res, () => clientAddress(req));
    if (refused === undefined) return next();
    reject(req, res, refused);
  };
}

/**
 * Takes one request of `address`'s from `limiter`: undefined when it may go on, else the words
 * of its refusal, `res` made a 429 with Retry-After for them.
 */
export function refusal(limiter: RateLimiter, res: ServerResponse, address: () => string): string | undefined {
  if (!limiter.limits) return undefined;
  const decision = limiter.take(rateKey(address()));
  if (decision.ok) return undefined;
  res.setHeader('Retry-After', String(decision.retryAfterSeconds));
  res.statusCode = 429;
  return rateLimitedMessage(decision.retryAfterSeconds);
}
