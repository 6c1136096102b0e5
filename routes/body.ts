// Input parsing shared by the faces. Bodies are read raw (bounded) and parsed here, once, into
// typed values: URLSearchParams keeps repeated keys (WebSub's repeated hub.url) and decodes
// percent-escapes as UTF-8, which express's urlencoded parser would not give us as plainly.
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { ServerResponse } from 'node:http';
import zlib from 'node:zlib';
import { sendContinue } from '../lib/continue.js';
import { decodeBytes, mediaType } from '../lib/media-type.js';
import { URL_PROBLEMS } from '../lib/messages.js';
import { carriesCredentials, hasControlCharacters, hasEdgeSpaces } from '../lib/model.js';

export function rawBody(limitBytes: number): RequestHandler {
  // Every content type, and none: rssCloud clients that send no Content-Type mean a form.
  return readsBody(limitBytes, express.raw({ type: () => true, limit: limitBytes }));
}

/** The codings body-parser decompresses (zstd only where this Node's zlib has it). */
const BODY_CODINGS: readonly string[] = ['gzip', 'deflate', 'br', ...('createZstdDecompress' in zlib ? ['zstd'] : [])];

/**
 * `parser` (a body-parser of at most `limitBytes`), with the client asked for its body (100
 * Continue) only now. A body declared too large is refused before that, unread: body-parser read
 * it all, however large, before its 413, and waited for one that a client expecting 100 Continue
 * never sends. As body-parser does, only an uncompressed body is judged by its declared length.
 */
export function readsBody(limitBytes: number, parser: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const refusal = refusalUnread(req, limitBytes);
    if (refusal !== undefined) return next(refusal);
    sendContinue(res);
    parser(req, res, next);
  };
}

/** Why readsBody(limitBytes) refuses `req`'s body without reading it, or undefined when it would read it. */
export function refusalUnread(req: Request, limitBytes: number): Error | undefined {
  const coding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (coding === 'identity' && Number(req.headers['content-length']) > limitBytes) return bodyTooLarge();
  // body-parser refuses these too, but only after the client was asked for the body.
  if (coding !== 'identity' && !BODY_CODINGS.includes(coding)) {
    return Object.assign(new Error(`unsupported content encoding "${coding}"`), { status: 415, expose: true, type: 'encoding.unsupported' });
  }
  return undefined;
}

/** A body over a limit, as body-parser reports one: bodyErrorStatus knows it, and each face answers 413 in its own shape. */
export function bodyTooLarge(): Error {
  return Object.assign(new Error('request entity too large'), { status: 413, expose: true, type: 'entity.too.large' });
}

export function bodyBuffer(req: Request): Buffer {
  return Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
}

/** True when the request says it is a form, or says nothing. */
export function isFormRequest(req: Request): boolean {
  const type = req.headers['content-type'];
  // Read with the hub's own media-type parser: req.is (type-is) cost ~8 µs of every ping's CPU.
  return type === undefined || type.trim() === '' || mediaType(type).type === 'application/x-www-form-urlencoded';
}

/**
 * Most parameters one form may carry. The largest real forms hold about a hundred (a WebSub
 * publish of MAX_URLS_PER_PUBLISH URLs; a pleaseNotify holds ~30); 64 KB of `a=&` is 21,000, and
 * decoding them took ~15-20 ms of the hub's one thread.
 */
const MAX_FORM_PARAMS = 1000;

/** Most parts in a multipart form: each costs far more to decode (962 file parts in 64 KB, ~25 ms). */
const MAX_MULTIPART_PARTS = 256;

/** Refused the way body-parser refuses a form over its parameterLimit, so each face answers 413 in its own shape. */
function tooManyParams(): Error {
  return Object.assign(new Error('too many parameters'), { status: 413, expose: true, type: 'parameters.too.many' });
}

/** How many times `needle` occurs in `body`: counted before anything is decoded. */
function count(body: Buffer, needle: string): number {
  let n = 0;
  for (let at = body.indexOf(needle); at !== -1; at = body.indexOf(needle, at + needle.length)) n++;
  return n;
}

/**
 * A form's parameters. Its bytes, percent-escaped or not, are in the charset its Content-Type
 * names, UTF-8 without one: a form from an ISO-8859-1 page that said so sent `caf%E9`, read as
 * UTF-8 "caf\uFFFD", and its ping or subscription named a feed that does not exist.
 */
export function formParams(req: Request): URLSearchParams {
  if (!isFormRequest(req)) return new URLSearchParams();
  return formFields(bodyBuffer(req), req.headers['content-type']);
}

/** The fields of a form's `body` sent as `contentType` (a form's, or none). */
export function formFields(body: Buffer, contentType: string | undefined): URLSearchParams {
  // Each parameter after the first follows a '&'.
  if (count(body, '&') >= MAX_FORM_PARAMS) throw tooManyParams();
  const { charset } = mediaType(contentType ?? '');
  if (charset === '' || /^utf-?8$/i.test(charset)) return new URLSearchParams(body.toString('utf8'));
  const params = new URLSearchParams();
  const decode = (part: string): string =>
    decodeBytes(Buffer.from(part.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1'), charset);
  // Byte for byte: latin1 maps each byte to one character and back.
  for (const pair of body.toString('latin1').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    params.append(decode(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? '' : decode(pair.slice(eq + 1)));
  }
  return params;
}

/** True for a multipart/form-data body: what PHP's curl sends when given its fields as an array. */
export function isMultipartRequest(req: Request): boolean {
  return req.is('multipart/form-data') === 'multipart/form-data';
}

/**
 * The text fields of a multipart/form-data body, in order (a file part is no parameter), or
 * null when the body is not one (no boundary, a broken part).
 */
export async function multipartParams(req: Request): Promise<URLSearchParams | null> {
  const type = req.headers['content-type'] ?? '';
  // Every part starts on a line of its own with "--" and the boundary: a value holding such
  // lines only counts too many, and only in a form nobody sends.
  if (count(bodyBuffer(req), '\n--') > MAX_MULTIPART_PARTS) throw tooManyParams();
  let data: FormData;
  try {
    data = await new Response(bodyBuffer(req), { headers: { 'content-type': type } }).formData();
  } catch {
    return null;
  }
  const params = new URLSearchParams();
  for (const [key, value] of data) if (typeof value === 'string') params.append(key, value);
  return params;
}

/**
 * The path the client asked for, without its query, as routing read it: from originalUrl, since
 * a POST to `/` is rewritten to the face it is for (routes/root.ts), and parsed, so that a target
 * in absolute form (`POST http://hub.example/websub`, as sent to a proxy) gives its path alone.
 */
export function originalPath(req: Request): string {
  return new URL(req.originalUrl, 'http://localhost').pathname;
}

export function queryParams(req: Request): URLSearchParams {
  const q = req.originalUrl.indexOf('?');
  return new URLSearchParams(q === -1 ? '' : req.originalUrl.slice(q + 1));
}

/**
 * The status for a failure body-parser reported, if the error came from it. For a
 * Content-Encoding it cannot read, `res` also says which it can (RFC 9110 §15.5.16).
 */
export function bodyErrorStatus(err: unknown, res: ServerResponse): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { type, status, expose } = err as { type?: unknown; status?: unknown; expose?: unknown };
  if (typeof status !== 'number') return undefined;
  if (type === 'encoding.unsupported') res.setHeader('Accept-Encoding', BODY_CODINGS.join(', '));
  if (typeof type === 'string') return status;
  // A body that fails to decompress (bad gzip/deflate/br) comes back as a bare 400 with no
  // `type`; it is still the client's fault and must get the face's own reply, not a 500.
  return expose === true && status >= 400 && status < 500 ? status : undefined;
}

/** An absolute http(s) URL without a fragment or credentials, or what is wrong with it. */
export function parseHttpUrl(value: string | null | undefined): string | { problem: string } {
  if (value === null || value === undefined || value === '') return { problem: URL_PROBLEMS.missing };
  if (hasControlCharacters(value)) return { problem: URL_PROBLEMS.controlCharacters };
  if (hasEdgeSpaces(value)) return { problem: URL_PROBLEMS.edgeSpaces };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: URL_PROBLEMS.notAbsolute };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { problem: URL_PROBLEMS.notHttp };
  if (value.includes('#')) return { problem: URL_PROBLEMS.fragment };
  if (carriesCredentials(value)) return { problem: URL_PROBLEMS.credentials };
  return value;
}
