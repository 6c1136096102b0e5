// A TCP proxy on 127.0.0.1 in front of a PostgreSQL server that checks each connection's startup
// packet as PgBouncer does: a parameter other than those it tracks (and those named in its
// ignore_startup_parameters) is refused with PgBouncer's own error, before the server is reached.
// Everything after an accepted startup packet is carried as it is; its simple queries are noted.
import net, { type AddressInfo } from 'node:net';

/** What PgBouncer (1.18) accepts in a startup packet with ignore_startup_parameters empty. */
export const PGBOUNCER_STARTUP_PARAMETERS = ['user', 'database', 'application_name', 'client_encoding', 'datestyle', 'timezone', 'standard_conforming_strings'];

export interface PoolerProxy {
  host: string;
  port: number;
  /** The startup parameters of every connection, in order, refused ones included. */
  readonly startups: Record<string, string>[];
  /** Simple-protocol statements (Query messages) carried, with their connection's application_name. */
  readonly queries: { applicationName: string; text: string }[];
  close(): Promise<void>;
}

/** Where a connection URL's server listens: its unix socket (?host=/dir) or host:port. */
export function serverAddress(url: string): net.NetConnectOpts {
  const u = new URL(url);
  const port = Number(u.port || 5432);
  const dir = u.searchParams.get('host');
  return dir?.startsWith('/') ? { path: `${dir}/.s.PGSQL.${port}` } : { host: u.hostname, port };
}

function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat([...[`SFATAL`, `VFATAL`, `C${code}`, `M${message}`].map((f) => Buffer.from(`${f}\0`)), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

function parseStartup(packet: Buffer): Record<string, string> {
  const parts = packet.subarray(8).toString('utf8').split('\0');
  const params: Record<string, string> = {};
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) params[parts[i]!] = parts[i + 1]!;
  return params;
}

export async function startPoolerProxy(server: net.NetConnectOpts, accepted: readonly string[] = PGBOUNCER_STARTUP_PARAMETERS): Promise<PoolerProxy> {
  const startups: Record<string, string>[] = [];
  const queries: { applicationName: string; text: string }[] = [];
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    let head = Buffer.alloc(0);
    const onStartup = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4 || head.length < head.readInt32BE(0)) return;
      const packet = head.subarray(0, head.readInt32BE(0));
      if (packet.length === 8 && packet.readInt32BE(4) === 80877103) {
        // SSLRequest: no TLS here, as a PgBouncer without client_tls_sslmode answers.
        head = head.subarray(8);
        client.write('N');
        return;
      }
      client.off('data', onStartup);
      const params = parseStartup(packet);
      startups.push(params);
      const refused = Object.keys(params).find((k) => !accepted.includes(k.toLowerCase()));
      if (refused !== undefined) {
        client.end(errorResponse('08P01', `unsupported startup parameter: ${refused}`));
        return;
      }
      const upstream = net.createConnection(server);
      sockets.add(upstream);
      upstream.on('close', () => {
        sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => upstream.destroy());
      client.on('close', () => upstream.destroy());
      upstream.pipe(client);
      // Messages after the startup packet: a type byte, then a length that counts itself.
      let rest = head.subarray(packet.length);
      const carry = (data: Buffer): void => {
        upstream.write(data);
        rest = Buffer.concat([rest, data]);
        while (rest.length >= 5 && rest.length >= 1 + rest.readInt32BE(1)) {
          const end = 1 + rest.readInt32BE(1);
          if (rest[0] === 0x51) queries.push({ applicationName: params.application_name ?? '', text: rest.subarray(5, end - 1).toString('utf8') });
          rest = rest.subarray(end);
        }
      };
      upstream.write(packet);
      const pending = rest;
      rest = Buffer.alloc(0);
      if (pending.length > 0) carry(pending);
      client.on('data', carry);
    };
    client.on('data', onStartup);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (proxy.address() as AddressInfo).port,
    startups,
    queries,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    },
  };
}
