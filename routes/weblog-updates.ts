// weblogUpdates over XML-RPC (mounted by rpc2.ts at /RPC2): the update pings blogging tools send
// to every URL in their ping list. WordPress sends extendedPing(blog name, home URL, feed URL)
// and, when that fails, ping(blog name, home URL); Movable Type and weblogs.com-era tools send
// ping with up to four strings. Every well-formed call is answered with the struct these
// clients read, {flerror, message}, never a fault: a call the hub cannot act on, wrong
// parameters included, is flerror true with the reason.
import type { Hub, SitePingRequest } from '../lib/hub.js';
import { WEBLOG_UPDATES_WORDS, weblogUpdatesMessage, weblogUpdatesUsageMessage } from '../lib/messages.js';
import type { XmlRpcValue } from '../lib/xmlrpc.js';
import { parseHttpUrl } from './body.js';

export interface WeblogUpdatesAnswer {
  [member: string]: XmlRpcValue;
  flerror: boolean;
  message: string;
}

interface Method {
  min: number;
  max: number;
  usage: string;
  /** The parameters (arity checked, all strings) as a site ping, or the problem with them. */
  request(params: string[]): SitePingRequest | string;
}

const METHODS: Record<string, Method> = {
  'weblogUpdates.ping': {
    min: 2,
    max: 4,
    usage: '(name, siteUrl[, changesUrl[, categoryOrFeedUrl]]) as strings',
    // The fourth is a category in weblogs.com's API, and a feed URL for many tools since: an
    // http(s) URL there is taken for the feed, anything else is a category and ignored.
    request: ([, siteUrl = '', , fourth = '']) => {
      const feedUrl = parseHttpUrl(fourth);
      return siteRequest(siteUrl, typeof feedUrl === 'string' ? feedUrl : '');
    },
  },
  'weblogUpdates.extendedPing': {
    min: 3,
    max: 5,
    usage: '(name, siteUrl, changesUrl[, feedUrl[, tags]]) as strings',
    // WordPress sends three strings, its feed URL third (weblog_ping in wp-includes/comment.php);
    // Google's extendedPing put the changed page third and the feed fourth. So: the fourth when
    // given, else the third. A page there (not a feed) stands for the feeds it links to; an
    // empty fourth means the feeds are discovered from the site's page.
    request: (params) => {
      const [, siteUrl = '', third = '', fourth] = params;
      return siteRequest(siteUrl, params.length >= 4 ? (fourth ?? '') : third);
    },
  },
  'weblogUpdates.rssUpdate': {
    min: 2,
    max: 2,
    usage: '(name, feedUrl) as strings',
    request: ([, feedUrl = '']) => {
      const feed = parseHttpUrl(feedUrl);
      return typeof feed === 'string' ? { siteUrl: feed, feedUrl: feed } : `the feed URL ${feed.problem}`;
    },
  },
};

function siteRequest(siteUrl: string, feedUrl: string): SitePingRequest | string {
  if (feedUrl !== '') {
    const feed = parseHttpUrl(feedUrl);
    if (typeof feed !== 'string') return `the feed URL ${feed.problem}`;
    // The site URL is informative only when the feed is named; it need not even be a URL.
    return { siteUrl, feedUrl: feed };
  }
  const site = parseHttpUrl(siteUrl);
  return typeof site === 'string' ? { siteUrl: site } : `the site URL ${site.problem}`;
}

export function isWeblogUpdatesMethod(name: string): boolean {
  return Object.hasOwn(METHODS, name);
}

export async function weblogUpdates(hub: Hub, methodName: string, params: XmlRpcValue[]): Promise<WeblogUpdatesAnswer> {
  const method = METHODS[methodName];
  if (!method) throw new Error(`not a weblogUpdates method: ${methodName}`);
  const refuse = (message: string): WeblogUpdatesAnswer => ({ flerror: true, message });
  if (params.length < method.min || params.length > method.max) {
    const problem = params.length > method.max ? 'there are too many parameters' : "there aren't enough parameters";
    return refuse(weblogUpdatesUsageMessage(methodName, method.usage, problem));
  }
  // Tags (extendedPing's fifth) may be a string or a list; they are not used.
  const [name, ...rest] = methodName === 'weblogUpdates.extendedPing' ? params.slice(0, 4) : params;
  const positional = [name === undefined ? undefined : nameText(name), ...rest];
  if (!positional.every((p): p is string => typeof p === 'string')) {
    return refuse(weblogUpdatesUsageMessage(methodName, method.usage, 'the parameters are not all strings'));
  }
  const request = method.request(positional);
  if (typeof request === 'string') return refuse(weblogUpdatesUsageMessage(methodName, method.usage, request));
  const { error } = await hub.pingSite(request);
  return error ? refuse(weblogUpdatesMessage(error)) : { flerror: false, message: WEBLOG_UPDATES_WORDS.thanks };
}

/**
 * The blog's name as the text its client meant. Perl's XML-RPC libraries type a string by its
 * looks: a blog called "2024" goes as <int> (RPC::XML) or <i4> (Frontier::Client), and
 * XMLRPC::Lite sends any value with a non-ASCII character, every accented name, as <base64> of
 * its bytes (UTF-8, or Latin-1 from older Perls: the name is only informative, so a byte that is
 * not UTF-8 becomes U+FFFD rather than a refusal). Only the name: the URLs such clients send are
 * ASCII, and stay strings.
 */
function nameText(value: XmlRpcValue): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}
