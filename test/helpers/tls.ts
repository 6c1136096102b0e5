// Certificates for HTTPS servers in tests (test/fixtures/tls, described in its README): a test
// CA the hub under test is told to trust, and server identities signed by it or not.
import { readFileSync } from 'node:fs';

const read = (name: string): string => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

export interface TlsIdentity {
  key: string;
  cert: string;
}

/** The test CA: give it to the hub (startTestHub's `ca`) for it to trust the identities below. */
export const TEST_CA: string = read('ca.pem');

/** Names an identity: localhost, feed.test and 127.0.0.1, signed by the test CA, valid to 2126. */
export type IdentityName = 'localhost' | 'expired' | 'self-signed' | 'unknown-ca';

/**
 * `localhost`: trusted. `expired`: the same names and CA, valid only on 2020-01-01.
 * `self-signed`: the same names, signed by itself (untrusted). `unknown-ca`: the same names,
 * signed by a CA the hub does not trust.
 */
export function identity(name: IdentityName): TlsIdentity {
  return { key: read(`${name}.key`), cert: read(`${name}.pem`) };
}
