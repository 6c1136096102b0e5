// X-Hub-Signature: "<algorithm>=<hex HMAC of the raw body>" (WebSub REC §7.1), used both when
// the hub signs a delivery and when it checks a publisher's signed fat ping.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { SignatureAlgorithm } from './config.js';

const ALGORITHMS: readonly SignatureAlgorithm[] = ['sha1', 'sha256', 'sha384', 'sha512'];

export function sign(algorithm: SignatureAlgorithm, secret: string, body: Buffer): string {
  return `${algorithm}=${createHmac(algorithm, secret).update(body).digest('hex')}`;
}

/** True when `header` is a valid signature of `body` with `secret`, in any of the REC's algorithms. */
export function verifySignature(header: string | undefined, secret: string, body: Buffer): boolean {
  if (header === undefined) return false;
  const eq = header.indexOf('=');
  const algorithm = header.slice(0, eq).trim().toLowerCase();
  const given = header.slice(eq + 1).trim().toLowerCase();
  if (eq <= 0 || !(ALGORITHMS as readonly string[]).includes(algorithm) || !/^[0-9a-f]+$/.test(given)) return false;
  const expected = createHmac(algorithm, secret).update(body).digest();
  const actual = Buffer.from(given, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * Whether a secret someone sent (a bearer token) is the one kept. Compared by digest, so
 * neither the time taken nor a length check tells how much of it, or how much of it, matched.
 */
export function sameSecret(given: string, kept: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(kept));
}
