// Builds a running hub from a Config: store, outbound client, notifier, core, app, listener,
// cleanup timer. main.ts runs it for `npm start`; tests start it in-process with port 0.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import type { Config } from './config.js';
import { HttpClient, type Resolver } from './http.js';
import { Poller } from './feeds/poller.js';
import { Hub } from './hub.js';
import { silentLogger, type Logger } from './log.js';
import { Notifier } from './notifier/notifier.js';
import { LowdbStore } from './store/lowdb-store.js';
import type { Store } from './store/store.js';
import { Verifier } from './verify.js';

export const USER_AGENT = 'Pushbutton/0.1 (rssCloud and WebSub hub)';
const CLEANUP_INTERVAL_MS = 24 * 3600_000;
const SHUTDOWN_GRACE_MS = 5000;

export interface RunningHub {
  url: string;
  port: number;
  config: Config;
  hub: Hub;
  store: Store;
  server: http.Server;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** Replaces the system DNS resolver for outbound requests (tests). */
  resolver?: Resolver;
}

export async function startHub(given: Config, opts: StartOptions = {}): Promise<RunningHub> {
  const log = opts.log ?? silentLogger;
  // Listen first: with PORT=0 the hub's own URL (the rel="hub" of every delivery) is known
  // only once the port is, and the app is attached before anything is handed out.
  const server = http.createServer();
  // Slow clients may not hold a connection open forever.
  server.headersTimeout = given.serverHeadersTimeoutMs;
  server.requestTimeout = given.serverRequestTimeoutMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(given.port, given.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = given.host === '0.0.0.0' || given.host === '::' ? 'localhost' : given.host.includes(':') ? `[${given.host}]` : given.host;
  const config: Config = given.publicUrlSet ? given : { ...given, publicUrl: `http://${host}:${port}` };

  const store = new LowdbStore({ dir: config.dataDir });
  await store.open();
  const httpClient = new HttpClient({
    timeoutMs: config.requestTimeoutMs,
    maxResponseBytes: config.maxResponseBytes,
    userAgent: USER_AGENT,
    fetchAllowCidrs: config.fetchAllowCidrs,
    callbackAllowCidrs: config.callbackAllowCidrs,
    ...(opts.resolver && { resolver: opts.resolver }),
  });
  const notifier = new Notifier({ config, http: httpClient, store, log });
  const verifier = new Verifier(httpClient, log);
  const hub = new Hub({ config, store, http: httpClient, notifier, verifier, log });
  const app = createApp({ config, hub, store, log });
  const poller = new Poller({ config, store, log, refresh: (url) => hub.refresh(url) });
  hub.on('subscribed', (url: string) => poller.track(url));
  hub.on('published', (url: string) => poller.publisherActive(url));

  server.on('request', app);

  const cleanup = async (): Promise<void> => {
    try {
      const report = await hub.removeExpired();
      log.info('cleanup', { ...report });
    } catch (e) {
      log.error('cleanup failed', { error: e instanceof Error ? e.message : String(e) });
    }
  };
  await cleanup();
  await hub.resume();
  await poller.start();
  const timer = setInterval(() => void cleanup(), CLEANUP_INTERVAL_MS);
  timer.unref();

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      clearInterval(timer);
      poller.stop();
      // Stop accepting, let requests in flight (a ping waiting for its deliveries) finish for
      // a grace period, then cut what is left.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await closed;
      clearTimeout(grace);
      notifier.close();
      await hub.idle();
      await httpClient.close();
      await store.close();
    })());

  return { url: `http://${host}:${port}`, port, config, hub, store, server, close };
}
