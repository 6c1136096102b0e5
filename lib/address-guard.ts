// Decides whether the hub may open a connection to an IP address. Every outbound request
// (feed fetches, subscriber callbacks) goes to a URL someone else chose, so without this
// check anyone could make the hub probe its own network (SSRF).
import { BlockList, isIP } from 'node:net';

/**
 * 'certificate': an https peer's certificate was refused (expired, self-signed or of an unknown
 * CA, for other names); kept apart from 'network' so whoever reads the failure knows to look at
 * the peer's certificate rather than at its reachability.
 */
export type OutboundErrorCode = 'bad_url' | 'blocked_address' | 'timeout' | 'too_large' | 'too_many_redirects' | 'certificate' | 'network';

/** The only error the outbound HTTP layer rejects with. */
export class OutboundError extends Error {
  constructor(
    readonly code: OutboundErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

// Everything that is not a public unicast address.
const DENY_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast 255.255.255.255
];
const DENY_V6: Array<[string, number]> = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
  // Local-use NAT64 (RFC 8215): exists to reach the private IPv4 ranges the well-known prefix
  // may not stand for, so where one is routed, 64:ff9b:1::a00:1 is 10.0.0.1.
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments
];

// Cloud instance-metadata endpoints hand out credentials; no allow-list may open them.
const METADATA_V4 = ['169.254.169.254', '169.254.170.2', '100.100.100.200'];
const METADATA_V6 = ['fd00:ec2::254'];

const defaultDeny = new BlockList();
for (const [a, n] of DENY_V4) defaultDeny.addSubnet(a, n, 'ipv4');
for (const [a, n] of DENY_V6) defaultDeny.addSubnet(a, n, 'ipv6');

const metadata = new BlockList();
for (const a of METADATA_V4) metadata.addAddress(a, 'ipv4');
for (const a of METADATA_V6) metadata.addAddress(a, 'ipv6');

/** Expands an IPv6 address into its eight 16-bit groups; null if it is not one. */
export function v6Groups(ip: string): number[] | null {
  let s = ip;
  const tail: number[] = [];
  // A trailing dotted quad ("::ffff:1.2.3.4") stands for the last two groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    if (isIP(dotted[2]!) !== 4) return null;
    const o = dotted[2]!.split('.').map(Number);
    tail.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
    s = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string | undefined): number[] => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const fill = 8 - tail.length - head.length - rest.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return null;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest, ...tail];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

function v4FromGroups(hi: number, lo: number): string {
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

interface Judged {
  address: string;
  type: 'ipv4' | 'ipv6';
  /** IPv4 address carried inside a NAT64 address, checked against the metadata list. */
  nat64V4?: string;
}

/** Normalises an address for judging: drops an IPv6 zone, turns IPv4-mapped IPv6 into IPv4. */
function normalise(ip: string): Judged | null {
  // A zone ("fe80::1%eth0") makes BlockList match nothing, which would slip past the deny list.
  const address = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  const family = isIP(address);
  if (family === 4) return { address, type: 'ipv4' };
  if (family !== 6) return null;
  const g = v6Groups(address);
  if (!g) return null;
  const zeros5 = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0;
  // ::ffff:a.b.c.d is how a dual-stack socket reports an IPv4 peer: it IS that IPv4 address.
  if (zeros5 && g[5] === 0xffff) return { address: v4FromGroups(g[6]!, g[7]!), type: 'ipv4' };
  // NAT64's well-known prefix (64:ff9b::/96) stands for the IPv4 address it ends with, and may
  // stand for no other than a public one (RFC 6052): judged as that address, as mapped ones are.
  // Refused whole, as it was, a hub on an IPv6-only host behind DNS64 (AWS's IPv6-only subnets)
  // could reach no IPv4-only feed or subscriber, and opening the prefix to reach them opened
  // every private address behind the translator with it.
  const zeros4 = g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0;
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros4) return { address: v4FromGroups(g[6]!, g[7]!), type: 'ipv4' };
  // A local-use /96 (the usual layout: the IPv4 address last), refused unless allowed.
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1 && g[3] === 0 && g[4] === 0 && g[5] === 0) {
    return { address, type: 'ipv6', nat64V4: v4FromGroups(g[6]!, g[7]!) };
  }
  return { address, type: 'ipv6' };
}

/** Decisions remembered per address string; the lists never change, so neither do the answers. */
const DECISION_CACHE_SIZE = 4096;

export class AddressGuard {
  private readonly allow = new BlockList();
  /**
   * Judging an address costs a normalisation and up to four BlockList lookups (each builds a
   * SocketAddress); a fan-out asks about the same few addresses thousands of times a second.
   */
  private readonly decisions = new Map<string, boolean>();

  /** allowCidrs: "a.b.c.d", "a.b.c.d/n", IPv6 or IPv6/n, already validated by config. */
  constructor(allowCidrs: string[]) {
    for (const entry of allowCidrs) {
      const [addr = '', bits] = entry.split('/');
      const j = normalise(addr);
      if (!j) continue;
      const max = isIP(addr) === 6 ? 128 : 32;
      const prefix = bits === undefined ? max : Number(bits);
      // An allow entry written as IPv4-mapped IPv6 means that IPv4 range, since that is how
      // mapped addresses are judged. One in NAT64's prefix does not: `64:ff9b::/96`, once the
      // way to reach IPv4-only hosts from an IPv6-only one, would open every IPv4 address.
      const mapped = max === 128 && j.type === 'ipv4' && v6Groups(addr.split('%')[0]!)?.[5] === 0xffff;
      if (mapped && prefix >= 96) this.allow.addSubnet(j.address, prefix - 96, 'ipv4');
      else this.allow.addSubnet(addr.split('%')[0]!, prefix, max === 128 ? 'ipv6' : 'ipv4');
    }
  }

  isAllowed(ip: string): boolean {
    let allowed = this.decisions.get(ip);
    if (allowed === undefined) {
      allowed = this.judge(ip);
      if (this.decisions.size >= DECISION_CACHE_SIZE) this.decisions.clear();
      this.decisions.set(ip, allowed);
    }
    return allowed;
  }

  private judge(ip: string): boolean {
    const j = normalise(ip);
    if (!j) return false;
    if (metadata.check(j.address, j.type)) return false;
    if (j.nat64V4 !== undefined && metadata.check(j.nat64V4, 'ipv4')) return false;
    if (this.allow.check(j.address, j.type)) return true;
    return !defaultDeny.check(j.address, j.type);
  }

  check(ip: string): void {
    if (!this.isAllowed(ip)) throw new OutboundError('blocked_address', `address ${ip} is not allowed`);
  }
}
