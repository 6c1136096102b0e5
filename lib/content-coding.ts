// A response body in the Content-Encoding its server chose. The hub asks for none (it sends no
// Accept-Encoding), but some servers compress anyway: a static file server that keeps feeds
// gzipped on disk, a CDN that compresses whatever it caches. Taken as it came, such a body was
// no feed to diff, no page to discover links in, and went to WebSub subscribers as gzip bytes
// under the feed's Content-Type, which says nothing of gzip. So it is decoded here, bounded like
// any body: the decoded bytes may be no more than the cap on what is read.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { OutboundError } from './address-guard.js';

type Decoder = (buf: Buffer, opts: zlib.ZlibOptions | zlib.BrotliOptions) => Promise<Buffer>;

const gunzip: Decoder = promisify(zlib.gunzip);
const inflate: Decoder = promisify(zlib.inflate);
const inflateRaw: Decoder = promisify(zlib.inflateRaw);
const brotli: Decoder = promisify(zlib.brotliDecompress);

/** "deflate" is zlib-wrapped (RFC 9110 §8.4.1.2), but servers have long sent it raw too. */
const deflate: Decoder = (buf, opts) => (buf.length >= 2 && (buf[0]! & 0x0f) === 8 && ((buf[0]! << 8) | buf[1]!) % 31 === 0 ? inflate : inflateRaw)(buf, opts);

const DECODERS: Record<string, Decoder> = { gzip: gunzip, 'x-gzip': gunzip, deflate, br: brotli };

/**
 * The body and headers as if the server had sent the body unencoded: Content-Encoding and
 * Content-Length (which describe the encoded bytes) removed. A coding we do not know, or none,
 * leaves both as they are. Throws OutboundError: 'too_large' past `maxBytes` decoded, 'network'
 * when the body is not what its coding says.
 */
export async function decodeBody(headers: Record<string, string>, body: Buffer, maxBytes: number): Promise<{ headers: Record<string, string>; body: Buffer }> {
  const header = headers['content-encoding'];
  if (header === undefined || body.length === 0) return { headers, body };
  const codings = header
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0 || !codings.every((c) => c in DECODERS)) return { headers, body };
  let decoded = body;
  // Codings are listed in the order they were applied: undone last first.
  for (const coding of codings.reverse()) {
    try {
      decoded = await DECODERS[coding]!(decoded, { maxOutputLength: maxBytes });
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new OutboundError('too_large', `response exceeds ${maxBytes} bytes once its ${coding} is decoded`);
      }
      throw new OutboundError('network', `response body is not valid ${coding}`);
    }
  }
  const { 'content-encoding': _coding, 'content-length': _length, ...rest } = headers;
  return { headers: rest, body: decoded };
}
