import type { NextFunction, Request, Response, Router } from 'express';
import type { ServerResponse } from 'node:http';

/** Open CORS: browser pingers and dashboards on other origins must reach the hub (rssCloud #31). */
export function cors(_req: Request, res: Response, next: NextFunction): void {
  corsHeaders(res);
  next();
}

/** cors's headers, for a face answered without express too (routes/plain-ping.ts). */
export function corsHeaders(res: ServerResponse): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  // X-Hub-Signature and a feed's own Content-Type: a fat ping sent from a page. Authorization:
  // a signed subscription's secret, the only way /subscription answers about one (a browser
  // never lets a page send it unless the preflight names it; `*` does not cover it). `*`: any
  // other header a page adds (Cache-Control, X-Requested-With, as pages using fetch-event-source
  // do) failed the preflight, and fetch-event-source asked again every second for good, never
  // streaming. Nothing is guarded by a header here (no cookies are let through).
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Accept, Authorization, Last-Event-ID, X-Hub-Signature, *');
}

/**
 * Answers browsers' CORS preflight for `paths` with the same open policy. Without it a request
 * a browser must ask about first (a fat ping, an XML-RPC call, any non-form body) got express's
 * own OPTIONS reply, without the CORS headers, and the browser never sent it. `allow`, when
 * given, also tells a plain OPTIONS the methods the paths take.
 */
export function answerPreflight(router: Router, paths: string[], allow?: string): void {
  router.options(paths, cors, (_req: Request, res: Response) => {
    if (allow !== undefined) res.setHeader('Allow', allow);
    res.setHeader('Access-Control-Max-Age', '86400');
    res.status(204).end();
  });
}
