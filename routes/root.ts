// POST / : the hub's bare address where a tool asks for a ping or hub URL. People paste it there:
// WordPress's Update Services list starts with http://rpc.pingomatic.com/ (a root), and the best
// known WebSub hubs (Google's, Superfeedr's) are at their roots, so a feed may name this hub as
// `https://hub.example/`. Such a request was a 404 its tool logged at best; it is now handed to
// the face it was meant for, which answers it exactly as at its own path.
import type { Request } from 'express';
import { mediaType } from '../lib/media-type.js';
import { queryParams } from './body.js';

/** XML-RPC travels as text/xml (some libraries say application/xml); anything else is WebSub. */
const XML_RPC_TYPES = new Set(['text/xml', 'application/xml']);

/** The path a POST to `/` is served at: `/RPC2` for an XML-RPC call, `/websub` otherwise. */
function rootPostPath(req: Request): '/RPC2' | '/websub' {
  // A fat ping is a feed's own XML, and says what it is by hub.mode in its query.
  if (queryParams(req).has('hub.mode')) return '/websub';
  return XML_RPC_TYPES.has(mediaType(req.headers['content-type'] ?? '').type) ? '/RPC2' : '/websub';
}

/**
 * Rewrites a POST to `/` to the face it is for, before the faces' routers see it; the access log
 * keeps the path the client used. Called by the app's arrival middleware, not a layer of its own.
 */
export function routeRootPost(req: Request): void {
  if (req.method === 'POST' && req.path === '/') {
    const q = req.url.indexOf('?');
    req.url = rootPostPath(req) + (q === -1 ? '' : req.url.slice(q));
  }
}
