// The XML-RPC face at /RPC2: rssCloud.hello, rssCloud.pleaseNotify and rssCloud.ping, with the
// reference server's exact results and faults (code 4). Every failure, malformed XML included,
// is a methodResponse fault with HTTP 200: XML-RPC clients read faults, not status codes.
// The weblogUpdates pings of blogging tools answer a {flerror, message} struct instead
// (weblog-updates.ts).
import type { NextFunction, Request, Response, Router } from 'express';
import { decodeBytes, mediaType } from '../lib/media-type.js';
import type { Hub } from '../lib/hub.js';
import type { Logger } from '../lib/log.js';
import { HUB_FAILURE_WORDS, XMLRPC_FAULT_CODE, XMLRPC_WORDS, messageFor, unreadableBodyMessage, xmlRpcArityMessage, xmlRpcUnknownMethod } from '../lib/messages.js';
import {
  buildFault,
  buildMethodResponse,
  parseMethodCall,
  XmlRpcError,
  type MethodCall,
  type XmlRpcLimits,
  type XmlRpcValue,
} from '../lib/xmlrpc.js';
import { bodyBuffer, bodyErrorStatus, rawBody } from './body.js';
import { answerPreflight, cors } from './cors.js';
import { isWeblogUpdatesMethod, weblogUpdates } from './weblog-updates.js';
import { clientAddress, rateLimit } from './rate.js';
import { sendString } from './reply.js';
import type { RateLimiter } from '../lib/rate-limit.js';

type Outcome = { value: XmlRpcValue } | { fault: string };

export interface Rpc2FaceOptions {
  maxBodyBytes: number;
  limits: XmlRpcLimits;
  rate: RateLimiter;
  log: Logger;
}

export function rpc2Routes(router: Router, hub: Hub, opts: Rpc2FaceOptions): void {
  const { limits } = opts;
  const refuse = (_req: Request, res: Response, msg: string): void => send(res, { fault: msg }, res.statusCode);
  // Open to pages on other origins, as the REST faces are; an XML body needs the preflight.
  answerPreflight(router, ['/RPC2']);
  router.post('/RPC2', cors, rateLimit(opts.rate, refuse), rawBody(opts.maxBodyBytes), async (req, res) => {
    let call: MethodCall;
    try {
      // In the encoding its Content-Type or XML declaration names (UTF-8 without either): a
      // client may send ISO-8859-1, whose accented URLs read as UTF-8 became U+FFFD.
      call = parseMethodCall(decodeBytes(bodyBuffer(req), mediaType(req.headers['content-type'] ?? '').charset), limits);
    } catch (e) {
      if (!(e instanceof XmlRpcError)) throw e;
      return send(res, { fault: e.message });
    }
    let outcome: Outcome;
    try {
      outcome = await dispatch(hub, call, clientAddress(req), opts.log);
    } catch (e) {
      // The hub's own failure (its store on a full disk): still the answer its client reads, a
      // fault, or weblogUpdates' struct, never a text/plain 500 its XML-RPC library cannot parse.
      opts.log.error('request failed', { path: req.path, method: call.methodName, error: e instanceof Error ? e.message : String(e) });
      outcome = isWeblogUpdatesMethod(call.methodName) ? { value: { flerror: true, message: HUB_FAILURE_WORDS } } : { fault: HUB_FAILURE_WORDS };
    }
    send(res, outcome);
  });
  router.use('/RPC2', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const status = bodyErrorStatus(err, res);
    if (status === undefined) return next(err);
    send(res, { fault: unreadableBodyMessage(status) }, status);
  });
}

function send(res: Response, outcome: Outcome, status = 200): void {
  const xml = 'fault' in outcome ? buildFault(XMLRPC_FAULT_CODE, outcome.fault) : buildMethodResponse(outcome.value);
  sendString(res, status, 'text/xml; charset=utf-8', xml);
}

async function dispatch(hub: Hub, call: MethodCall, callerAddress: string, log: Logger): Promise<Outcome> {
  const { methodName, params } = call;
  if (isWeblogUpdatesMethod(methodName)) return { value: await weblogUpdates(hub, methodName, params) };
  switch (methodName) {
    case 'rssCloud.hello':
      return { value: true };
    case 'rssCloud.ping': {
      const arity = checkArity('ping', params, 1, 1);
      if (arity) return arity;
      const url = asString(params[0]);
      if (url === undefined || url === '') return { fault: XMLRPC_WORDS.pingUrlRequired };
      // A ping over the hub's limits is not well-formed: a fault, like every other limit here.
      const tooLong = hub.checkUrls([url]);
      if (tooLong) return { fault: messageFor(tooLong, 'ping') };
      // Dave Winer's server answers true to every well-formed ping, even when the feed could
      // not be read, and clients depend on it: a failure of the hub's own (its store on a full
      // disk) too, which the log tells. A REST ping says so; this call has no words for it.
      try {
        await hub.ping(url);
      } catch (e) {
        log.error('rssCloud.ping failed on the hub\'s side; answered true, as every well-formed ping is', { topic: url, error: e instanceof Error ? e.message : String(e) });
      }
      return { value: true };
    }
    case 'rssCloud.pleaseNotify': {
      const arity = checkArity('pleaseNotify', params, 5, 6);
      if (arity) return arity;
      const [procedure, port, path, protocol, urlList, domain] = params;
      const strings = [procedure, port, path, protocol].map(asString);
      const urls = asUrlList(urlList);
      const domainText = domain === undefined ? '' : asString(domain);
      if (strings.includes(undefined) || urls === undefined || domainText === undefined) {
        return { fault: XMLRPC_WORDS.pleaseNotifyUsage };
      }
      const [notifyProcedure = '', portText = '', pathText = '', protocolText = ''] = strings as string[];
      const error = await hub.pleaseNotify({
        protocol: protocolText,
        port: portText,
        path: pathText,
        urls,
        ...(domainText !== '' && { domain: domainText }),
        callerAddress,
        notifyProcedure,
      });
      return error ? { fault: messageFor(error, 'subscribe') } : { value: true };
    }
    default:
      return { fault: xmlRpcUnknownMethod(methodName) };
  }
}

function checkArity(method: string, params: XmlRpcValue[], min: number, max: number): Outcome | undefined {
  if (params.length < min) return { fault: xmlRpcArityMessage(method, false) };
  if (params.length > max) return { fault: xmlRpcArityMessage(method, true) };
  return undefined;
}

/** Strings as they are; integers (a port sent as <i4>) as their decimal text. */
function asString(v: XmlRpcValue | undefined): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return String(v);
  return undefined;
}

/** An array of strings, or one string standing for a list of one. */
function asUrlList(v: XmlRpcValue | undefined): string[] | undefined {
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (!Array.isArray(v)) return undefined;
  // A Set: the array may hold thousands of URLs before the count is refused.
  const urls = new Set<string>();
  for (const item of v) {
    if (typeof item !== 'string') return undefined;
    if (item !== '') urls.add(item);
  }
  return [...urls];
}
