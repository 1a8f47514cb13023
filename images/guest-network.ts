import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SwpkgError } from '../catalog/index.js';

/**
 * How the guest reaches the host. Both give the guest 10.0.2.15/24 with no
 * default route, the host at 10.0.2.2 and `nameserver 10.0.2.2`.
 *
 * - `restricted` (default): QEMU user networking with `restrict=on`, which
 *   drops every packet the guest sends except to the ports forwarded with
 *   `guestfwd` (TCP only): the guest cannot reach the host's other services
 *   nor the outside world even if it tried (added a route, used 10.0.2.3).
 *   UDP is dropped entirely, so DNS goes over TCP (the init writes
 *   `options use-vc`, which glibc and therefore Node's `dns.lookup` honour);
 *   the host's DNS responder must answer on TCP, on any host port, forwarded
 *   as guest port 53. A forwarded port whose host side refuses shows up in the
 *   guest as a connection that closes at once, not as "connection refused".
 * - `host-loopback`: user networking without `restrict`: 10.0.2.2:PORT is
 *   the host's 127.0.0.1:PORT for every port, UDP included (so a UDP DNS
 *   responder must bind 127.0.0.1:53 itself). Nothing else is reachable only
 *   because the guest has no default route and its resolver names 10.0.2.2;
 *   QEMU's DNS proxy at 10.0.2.3 would still reach the real network if a guest
 *   program addressed it directly.
 */
export type GuestNetworkMode = 'restricted' | 'host-loopback';

/** A TCP port the guest reaches as 10.0.2.2:guest, served by the host on 127.0.0.1:host. */
export interface PortForward {
  guest: number;
  host: number;
}

function validPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** Normalises `8080` to `{guest: 8080, host: 8080}` and checks the list. */
export function normalisePorts(ports: ReadonlyArray<number | PortForward>): PortForward[] {
  const out: PortForward[] = [];
  const seen = new Set<number>();
  for (const p of ports) {
    const f = typeof p === 'number' ? { guest: p, host: p } : p;
    if (!validPort(f.guest) || !validPort(f.host)) {
      throw new SwpkgError('E_USAGE', `invalid port forward ${JSON.stringify(p)}: ports are 1-65535`, { details: { port: p } });
    }
    if (seen.has(f.guest)) throw new SwpkgError('E_USAGE', `guest port ${f.guest} is forwarded twice`, { details: { port: f.guest } });
    seen.add(f.guest);
    out.push({ guest: f.guest, host: f.host });
  }
  return out;
}

/**
 * The relay QEMU runs per guest connection (`guestfwd=...-cmd:`): the
 * connection arrives as a socket on fds 0-2 and socat joins it to
 * 127.0.0.1:PORT. socat starts in about 3 ms where a Node relay took about
 * 55 ms (hyperfine on this host), and every package download, DNS query and
 * catalog fetch of the guest opens one. `FD:0,shut-down` half-closes the
 * guest's side when the host's closes (without it the guest never sees the
 * end of a response); `-t 600` bounds how long a half-closed connection
 * waits for its other direction; `-lf /dev/null` because stderr is the
 * guest's TCP stream too, so the relay must never print.
 */
export const RELAY_PROGRAM = 'socat';

export function relayCommand(socat: string, hostPort: number): string {
  return `${qemuCmdWord(socat)} -t 600 -lf /dev/null FD:0,,shut-down TCP:127.0.0.1:${hostPort}`;
}

/** The relay program's path on this host, or a clear error naming the package that provides it. */
export function findRelayProgram(pathVariable = process.env.PATH ?? ''): string {
  for (const dir of pathVariable.split(':')) {
    if (dir === '') continue;
    const candidate = join(dir, RELAY_PROGRAM);
    if (existsSync(candidate)) return candidate;
  }
  throw new SwpkgError('E_NOT_FOUND', `${RELAY_PROGRAM} is not installed: restricted guest networking relays each connection through it`, {
    hint: 'install the Debian package socat (bash scripts/setup.sh does)',
    details: { program: RELAY_PROGRAM },
  });
}

/** QEMU splits option values on `,` (doubled to escape) and guestfwd's `cmd:` is shell-parsed by glib. */
function qemuCmdWord(path: string): string {
  if (/['\n]/.test(path))
    throw new SwpkgError('E_USAGE', `path ${JSON.stringify(path)} cannot be passed to QEMU's guestfwd`, { details: { path } });
  return `'${path.replace(/,/g, ',,')}'`;
}

/** The `-netdev` value for a mode and its port forwards. */
export function netdevArgument(mode: GuestNetworkMode, ports: readonly PortForward[], relay: { socat: string }): string {
  if (mode === 'host-loopback') {
    const mismatched = ports.filter((p) => p.guest !== p.host);
    if (mismatched.length > 0) {
      throw new SwpkgError(
        'E_USAGE',
        `host-loopback networking cannot map ports (${mismatched.map((p) => `${p.guest}->${p.host}`).join(', ')})`,
        {
          hint: 'in host-loopback mode the guest reaches host port P as 10.0.2.2:P; use restricted mode to map ports',
          details: { ports: mismatched },
        },
      );
    }
    return 'user,id=n0,net=10.0.2.0/24,host=10.0.2.2,ipv6=off';
  }
  // guestfwd may not use the gateway address, so the gateway moves to 10.0.2.1 and 10.0.2.2 becomes
  // the forwarded address: the guest sees the same host address in both modes.
  const parts = ['user', 'id=n0', 'net=10.0.2.0/24', 'host=10.0.2.1', 'ipv6=off', 'restrict=on'];
  for (const p of ports) {
    parts.push(`guestfwd=tcp:10.0.2.2:${p.guest}-cmd:${relayCommand(relay.socat, p.host)}`);
  }
  return parts.join(',');
}
