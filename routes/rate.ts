import type { NextFunction, Request, Response } from 'express';
import { rateLimitedMessage } from '../lib/messages.js';
import { rateKey, type RateLimiter } from '../lib/rate-limit.js';

/** The address a request came from: the socket's, or the forwarded one behind TRUST_PROXY. */
export function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? '';
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
    const decision = limiter.take(rateKey(clientAddress(req)));
    if (decision.ok) return next();
    res.setHeader('Retry-After', String(decision.retryAfterSeconds));
    res.status(429);
    reject(req, res, rateLimitedMessage(decision.retryAfterSeconds));
  };
}
