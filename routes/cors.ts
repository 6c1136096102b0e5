import type { NextFunction, Request, Response } from 'express';

/** Open CORS: browser pingers and dashboards on other origins must reach the hub (rssCloud #31). */
export function cors(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Accept, Last-Event-ID');
  next();
}
