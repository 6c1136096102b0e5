import type { NextFunction, Request, Response } from 'express';
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
    address = req.ip ?? req.socket.remoteAddress ?? '';
    addresses.set(req, address);
  }
  return address;
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
    if (!limiter.limits) return next();
    const decision = limiter.take(rateKey(clientAddress(req)));
    if (decision.ok) return next();
    res.setHeader('Retry-After', String(decision.retryAfterSeconds));
    res.status(429);
    reject(req, res, rateLimitedMessage(decision.retryAfterSeconds));
  };
}
