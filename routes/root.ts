// POST / : the hub's bare address where a tool asks for a ping or hub URL. People paste it there:
// WordPress's Update Services list starts with http://rpc.pingomatic.com/ (a root), and the best
// known WebSub hubs (Google's, Superfeedr's) are at their roots, so a feed may name this hub as
// `https://hub.example/`. Such a request was a 404 its tool logged at best; it is now handed to
// the face it was meant for, which answers it exactly as at its own path.
import express, { type NextFunction, type Request, type Response } from 'express';
import { decodeBytes, mediaType } from '../lib/media-type.js';
import type { RateLimiter } from '../lib/rate-limit.js';
import { bodyBuffer, bodyTooLarge, queryParams, readsBody, refusalUnread } from './body.js';
import { cors } from './cors.js';
import { rateLimit } from './rate.js';
import { sendText } from './reply.js';

/** XML-RPC travels as text/xml (some libraries say application/xml). */
const XML_RPC_TYPES = new Set(['text/xml', 'application/xml']);

type Face = '/RPC2' | '/websub';

export interface RootPostLimits {
  rpc2MaxBodyBytes: number;
  websubMaxBodyBytes: number;
  /**
   * The bucket of the bodies read here to learn their face, taken before one is read: neither
   * face's can be, as the face is not known yet, and without one a client over its rate had each
   * body read whole before its face refused it. The face then takes from its own as well.
   */
  rate: RateLimiter;
}

/**
 * The start of an XML-RPC call: a methodCall element, after white space, an XML declaration,
 * comments, processing instructions and a document type, each optional (what XML allows before
 * the root). Not any `<`: a feed posted here without hub.mode starts with one too, and is
 * WebSub's to refuse (415) rather than XML-RPC's to answer with a fault under 200, which its
 * client takes for success. A WebSub form never starts with `<` (a form escapes it).
 */
// Each part ends at its first terminator (a processing instruction at its first `?>`, a comment
// at its first `-->`), so the head splits into parts one way only: with `[\s\S]*?` a body of
// many `<?a?>` could be split in 2^n ways before failing, a second of CPU per request.
const METHOD_CALL_START = /^\s*(?:<\?(?:[^?]|\?(?!>))*\?>\s*|<!--(?:[^-]|-(?!->))*-->\s*|<!DOCTYPE[^>]*>\s*)*<methodCall[\s/>]/;

/** Enough bytes for a declaration, a comment or two and the root element's name. */
const HEAD_BYTES = 1024;

function isMethodCall(req: Request): boolean {
  // Decoded as /RPC2 decodes the whole body (a BOM, then the charset of its Content-Type or its
  // declaration): a UTF-16 call sent as a form is as much a call there. A character cut in two
  // at the end of the head cannot matter to a match at its start.
  const head = bodyBuffer(req).subarray(0, HEAD_BYTES);
  return METHOD_CALL_START.test(decodeBytes(head, mediaType(req.headers['content-type'] ?? '').charset));
}

/** The face a POST to `/` is for when its headers tell, or undefined when only its body can. */
function faceByHeaders(req: Request): Face | undefined {
  // A fat ping is a feed's own XML, and says what it is by hub.mode in its query.
  if (queryParams(req).has('hub.mode')) return '/websub';
  const { type } = mediaType(req.headers['content-type'] ?? '');
  if (XML_RPC_TYPES.has(type)) return '/RPC2';
  // What PHP's curl sends given its fields as an array: a form, never an XML-RPC call.
  if (type === 'multipart/form-data') return '/websub';
  // Any other type, or none: PHP's curl labels a string it posts a form unless told otherwise,
  // and many ping scripts post their XML-RPC call so, or with no type at all.
  return undefined;
}

function routeTo(req: Request, face: Face): void {
  const q = req.url.indexOf('?');
  req.url = face + (q === -1 ? '' : req.url.slice(q));
}

/**
 * Rewrites a POST to `/` to the face it is for, before the faces' routers see it; the access log
 * keeps the path the client used. Called by the app's arrival middleware, not a layer of its own,
 * so no other request pays for it.
 *
 * When only the body can tell, it is read here, once, with the faces' own reader at the larger
 * of their limits, and the face then finds it read (body-parser passes over a request already
 * read to its end). Reading it whole rather than peeking at its first bytes and putting them
 * back keeps every body on one path: decompressed as the faces decompress it, asked for (100
 * Continue) as they ask, without reaching into the stream's buffering. The cost falls only on
 * this case: a body declared larger than both limits is left unread for WebSub to refuse as
 * before, and one within them is read (once its client is within `limits.rate`) before its
 * face's own checks of its headers and rate.
 */
export function rootPostRouting(limits: RootPostLimits): (req: Request, res: Response, next: NextFunction) => void {
  const readLimit = Math.max(limits.rpc2MaxBodyBytes, limits.websubMaxBodyBytes);
  const read = readsBody(readLimit, express.raw({ type: () => true, limit: readLimit }));
  // In WebSub's words, as every such body was answered here before XML-RPC was told apart.
  const overRate = rateLimit(limits.rate, (req, res, msg) => cors(req, res, () => sendText(res, res.statusCode, msg)));
  return (req, res, next) => {
    if (req.method !== 'POST' || req.path !== '/') return next();
    const face = faceByHeaders(req);
    if (face !== undefined || refusalUnread(req, readLimit) !== undefined) {
      routeTo(req, face ?? '/websub');
      return next();
    }
    overRate(req, res, () => read(req, res, (err?: unknown) => {
      // To the face's error handler, which answers as at its own path. Its route, whose first
      // step adds the CORS headers, is passed over for an error, so they are added here.
      const refuse = (refusal: unknown): void => cors(req, res, () => next(refusal));
      // Unreadable (cut short, bad gzip, undeclared and over both limits): which face it was for
      // cannot be told, and WebSub answered such bodies here before.
      if (err) {
        routeTo(req, '/websub');
        return refuse(err);
      }
      const chosen = isMethodCall(req) ? '/RPC2' : '/websub';
      routeTo(req, chosen);
      // A body declared over the face's limit is refused by the face's own reader, as at its
      // path; one sent chunked or compressed, which body-parser measured as it read, is measured
      // here against that limit.
      const limit = chosen === '/RPC2' ? limits.rpc2MaxBodyBytes : limits.websubMaxBodyBytes;
      if (bodyBuffer(req).length > limit && refusalUnread(req, limit) === undefined) return refuse(bodyTooLarge());
      next();
    }));
  };
}
