// One catalogue of what can go wrong and the words each face uses for it. The core speaks
// codes; a face chooses the words. The rssCloud words are compared byte for byte by real
// clients and by the community's e2e suite, so they are kept exactly as the reference server
// says them (../shared/protocols/rsscloud.md §1.6).
import { STATUS_CODES } from 'node:http';

export type HubErrorCode =
  | 'missing_params'
  | 'unsupported_protocol'
  | 'no_resources'
  | 'resource_unreadable'
  | 'no_feeds'
  | 'handler_test_failed'
  | 'ping_too_soon'
  | 'callback_refused'
  | 'publisher_signature'
  | 'url_too_long'
  | 'too_many_urls'
  | 'subscription_limit'
  | 'hub_busy';

/** When a WebSub request refused as hub_busy (WEBSUB_MAX_PENDING_VERIFICATIONS) is told to ask again. */
export const BUSY_RETRY_AFTER_SECONDS = 60;

export interface HubError {
  code: HubErrorCode;
  /** missing_params: the names, in the order they are reported. */
  missing?: string[];
  protocol?: string;
  url?: string;
  minSecs?: number;
  /** url_too_long, too_many_urls: the limit. */
  limit?: number;
  /** A reason for logs and non-rssCloud faces. */
  detail?: string;
}

export const RSSCLOUD_WORDS = {
  subscribed:
    "Thanks for the registration. It worked. When the resource updates we'll notify you. Don't forget to re-register after 24 hours, your subscription will expire in 25. Keep on truckin!",
  pinged: 'Thanks for the ping.',
} as const;

/** The words for an error: rssCloud's exact ones where it has them. `context` picks the subscribe or ping wording. */
export function messageFor(err: HubError, context: 'subscribe' | 'ping'): string {
  switch (err.code) {
    case 'missing_params':
      return `The following parameters were missing from the request body: ${(err.missing ?? []).join(', ')}.`;
    case 'unsupported_protocol':
      return `Can't accept the subscription because the protocol, <i>${err.protocol ?? ''}</i>, is unsupported.`;
    case 'no_resources':
      return 'No resources specified.';
    case 'resource_unreadable':
      return context === 'ping'
        ? `The ping was cancelled because there was an error reading the resource at URL ${err.url ?? ''}.`
        : `The subscription was cancelled because there was an error reading the resource at URL ${err.url ?? ''}.`;
    case 'no_feeds':
      // rssCloud has no words for "a page that links to no feed", and its clients compare the
      // words they know: to them, nothing readable was found at the URL.
      return messageFor({ ...err, code: 'resource_unreadable' }, context);
    case 'handler_test_failed':
      return 'The subscription was cancelled because the call failed when we tested the handler.';
    case 'ping_too_soon':
      return `A ping for this resource was received less than ${err.minSecs ?? 0} seconds ago.`;
    case 'callback_refused':
      return `The callback was refused: ${err.detail ?? 'it cannot be reached'}.`;
    case 'url_too_long':
      return `The URL is longer than ${err.limit ?? 0} characters.`;
    case 'too_many_urls':
      return `Too many URLs in one request: at most ${err.limit ?? 0}.`;
    case 'subscription_limit':
      return `Can't accept the subscription because ${err.detail ?? 'a subscription limit was reached'}.`;
    case 'publisher_signature':
      return 'The content is not signed with the secret configured for this topic.';
    case 'hub_busy':
      return `The hub is busy verifying other requests: try again in ${BUSY_RETRY_AFTER_SECONDS} seconds.`;
  }
}

/**
 * The words for a request that failed in the hub itself (its store on a full or failing disk):
 * nothing the client can fix, and worth trying again. rssCloud has none of its own.
 */
export const HUB_FAILURE_WORDS = 'The hub could not complete the request because of a problem on its side. Please try again later.';

/** The same, as the `error` of the operator's JSON routes, worded as their other errors are. */
export const HUB_FAILURE_ERROR = 'the hub could not complete the request because of a problem on its side; please try again later';

/** The words for a request body the hub refused to read (routes/body.ts gives the status): 413 too large, else unreadable. */
export function unreadableBodyMessage(status: number): string {
  return status === 413 ? 'The request body is too large.' : 'The request body could not be read.';
}

export const XMLRPC_FAULT_CODE = 4;

export function xmlRpcArityMessage(method: string, tooMany: boolean): string {
  return `Can't call "${method}" because there ${tooMany ? 'are too many' : "aren't enough"} parameters.`;
}

export function xmlRpcUnknownMethod(method: string): string {
  return `Can't make the call because "${method}" is not defined.`;
}

// weblogUpdates (weblogs.com's ping API, as WordPress and other blogging tools send it): the
// answer is a struct {flerror, message}, and these are its messages.
export const WEBLOG_UPDATES_WORDS = {
  thanks: 'Thanks for the ping.',
} as const;

/** The message of a weblogUpdates answer with flerror true. */
export function weblogUpdatesMessage(err: HubError): string {
  if (err.code === 'no_feeds') return `No feed was found at URL ${err.url ?? ''}: the page links to no RSS, Atom or JSON Feed.`;
  return messageFor(err, 'ping');
}

/** A call whose parameters are not what the method takes: the usage, so the sender can fix it. */
export function weblogUpdatesUsageMessage(method: string, usage: string, problem: string): string {
  return `Can't call "${method}" because ${problem}: it takes ${usage}.`;
}

export function rateLimitedMessage(retryAfterSeconds: number): string {
  return `Too many requests from your address: try again in ${retryAfterSeconds} seconds.`;
}

/** The status line's own words, for a client error with nothing more to say (a Range past the end of a file). */
export function statusTextMessage(status: number): string {
  return `${STATUS_CODES[status] ?? 'Bad request'}.`;
}

export const NOT_FOUND_WORDS = 'Not found.';

/**
 * The words of the app's last error handler, for a failure no face answered in its own way.
 * Not HUB_FAILURE_WORDS, though it means much the same: clients compare these bytes, and a
 * change of wording is a change of what they see, to be made on purpose.
 */
export const UNHANDLED_FAILURE_WORDS = 'The hub could not handle this request.';

/**
 * What is wrong with a URL a client sent (routes/body.ts parseHttpUrl), said after the
 * parameter's name: "hub.topic is required." (see badParameterMessage).
 */
export const URL_PROBLEMS = {
  missing: 'is required',
  controlCharacters: 'must not contain control characters (tabs, line breaks)',
  edgeSpaces: 'must not begin or end with a space',
  notAbsolute: 'is not an absolute URL',
  notHttp: 'must be an http or https URL',
  fragment: 'must not contain a fragment',
  credentials: 'must not carry a user name or password',
} as const;

/** A parameter refused for `problem` (one of URL_PROBLEMS): "hub.callback is not an absolute URL." */
export function badParameterMessage(name: string, problem: string): string {
  return `${name} ${problem}.`;
}

// The WebSub face's plain-text refusals and acknowledgements (REC §5.1.2: a 4xx with a reason).
export const WEBSUB_WORDS = {
  secretInUrl: 'hub.secret must be sent in the request body, not in the URL, where logs keep it.',
  notAForm: 'The request body must be a form: application/x-www-form-urlencoded (or multipart/form-data).',
  multipartUnreadable: 'The multipart/form-data body could not be read.',
  unknownMode: 'hub.mode must be subscribe, unsubscribe or publish.',
  howToUse: 'This is a WebSub hub: POST hub.mode=subscribe|unsubscribe|publish, or GET hub.mode=discover&hub.topic=URL.',
  leaseNotWhole: 'hub.lease_seconds must be a whole number of seconds (0 or less for the default lease).',
  publishNeedsUrl: 'hub.url (or hub.topic) is required to publish.',
} as const;

export function webSubFormTooLargeMessage(maxBytes: number): string {
  return `A form must be at most ${maxBytes} bytes; only a fat ping may be larger.`;
}

/** REC §5.1 says "less than 200 bytes", and so does the refusal. */
export function webSubSecretTooLongMessage(bytes: number): string {
  return `hub.secret must be less than 200 bytes (it has ${bytes}).`;
}

export function webSubVerifyTokenTooLongMessage(maxBytes: number, bytes: number): string {
  return `hub.verify_token must be at most ${maxBytes} bytes (it has ${bytes}).`;
}

export function webSubAcceptedMessage(mode: 'subscribe' | 'unsubscribe'): string {
  return `Accepted: the hub will verify this ${mode} request with a GET to the callback.`;
}

/** A publish's line for a URL it takes (and a fat ping's whole answer). */
export function webSubUrlAcceptedLine(url: string): string {
  return `Accepted: ${url}`;
}

/** A publish's line for a URL it refuses, with the problem (one of URL_PROBLEMS). */
export function webSubUrlRefusedLine(url: string, problem: string): string {
  return `Refused: ${url} (${problem})`;
}

// The operator's face: plain-text refusals of /admin, and the `error` of its JSON routes (lower
// case, no final stop, as HUB_FAILURE_ERROR).
export const OPERATOR_WORDS = {
  actionsOff: 'Operator actions are off: set ADMIN_TOKEN to enable them.',
  tokenRequired: 'A valid Authorization: Bearer token is required.',
  topicAndCallbackNotUrls: 'topic and callback must be absolute http(s) URLs',
  hostRequired: 'host is required',
  hostNotAlone: 'host must be a host or host:port alone, as /stats.json shows it',
} as const;

/** The `error` for a JSON body the operator's routes refused to read (routes/body.ts gives the status). */
export function operatorBodyError(status: number): string {
  if (status === 413) return 'the request body is too large';
  if (status === 415) return "the request body's charset or Content-Encoding is not supported";
  return 'the request body must be JSON';
}

// Faults of the rssCloud XML-RPC calls whose parameters are of the wrong kind.
export const XMLRPC_WORDS = {
  pingUrlRequired: 'The url parameter must be a non-empty string.',
  pleaseNotifyUsage: 'pleaseNotify takes (notifyProcedure, port, path, protocol, urlList[, domain]) as strings, an int port and a list of URLs.',
} as const;

/**
 * The `detail` of a subscription_limit error: the end of the reply's sentence (messageFor), the
 * log's reason and a WebSub denial's hub.reason (webSubLimitDenialReason).
 */
export const SUBSCRIPTION_LIMIT_REASONS = {
  notifyProcedureTooLong: (maxLength: number): string => `the notifyProcedure is longer than ${maxLength} characters`,
  topicFull: (perTopic: number): string => `the topic already has ${perTopic} subscriptions`,
  callbackHostFull: (host: string, perHost: number): string => `${host} already has ${perHost} subscriptions`,
} as const;

/** hub.reason of a WebSub denial sent to the callback after a limit filled during verification. */
export function webSubLimitDenialReason(detail: string | undefined): string {
  return `a subscription limit was reached: ${detail ?? ''}`;
}

/** hub.reason of a WebSub denial of a topic this hub may not read; `code` is the outbound refusal's. */
export function webSubTopicUnfetchableReason(code: string | undefined): string {
  return code === undefined ? 'the topic cannot be fetched by this hub' : `the topic cannot be fetched by this hub (${code})`;
}

// The stream face's refusals (routes/stream.ts) and the reason of a stream's reset (lib/stream.ts).
export const STREAM_WORDS = {
  topicRequired: 'Give at least one topic: /stream?topic=URL',
  cannotResume: 'cannot resume from that event id',
} as const;

export function streamsPerClientMessage(max: number): string {
  return `Too many open streams from your address (at most ${max}).`;
}

export function streamsFullMessage(max: number, retryAfterSeconds: number): string {
  return `The hub holds as many streams as it can (${max}): try again in ${retryAfterSeconds} seconds.`;
}

export function topicsPerStreamMessage(max: number): string {
  return `At most ${max} topics per stream.`;
}
