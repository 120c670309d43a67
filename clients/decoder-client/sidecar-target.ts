/**
 * What `--sidecar` (and `SidecarClient`'s `address`) may name, and the grpc-js target it becomes:
 *
 *   HOST:PORT                one sidecar, handed to grpc-js as it is (its default: DNS, pick_first)
 *   HOST:PORT,HOST:PORT,...  several sidecars. IP literals (`10.0.0.7:50051`, `[fd00::7]:50051`)
 *                            go straight into grpc-js's `ipv4:` / `ipv6:` target; host names are
 *                            looked up ONCE, here, at start (node:dns lookup, every address), and
 *                            their addresses put in that target: a list never re-resolves.
 *   dns:///NAME:PORT         every address NAME resolves to, through grpc-js's own DNS resolver,
 *                            which resolves again when a connection is lost (the form for a
 *                            Kubernetes headless Service, whose answers follow the ready pods).
 *
 * A list or dns:/// is "balanced": the channel runs grpc-js's round_robin policy over the
 * addresses (see sidecar-client.ts). Parsing is synchronous and exact, so `--sidecar` is checked
 * with the other flags; only the lookup of names is asynchronous.
 */
import { lookup } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';

export class SidecarTargetError extends Error {}

interface HostPort {
  /** As written: a name, an IPv4 literal, or an IPv6 literal without its brackets. */
  readonly host: string;
  readonly port: number;
  /** 4 or 6 for an IP literal, null for a name. */
  readonly family: 4 | 6 | null;
}

export type ParsedSidecarTarget =
  | { readonly kind: 'single'; readonly text: string }
  | { readonly kind: 'list'; readonly text: string; readonly entries: readonly HostPort[] }
  | { readonly kind: 'dns'; readonly text: string; readonly name: string; readonly port: number };

/** A target ready for grpc-js. */
export interface SidecarTarget {
  /** What the user wrote. */
  readonly text: string;
  /** The target string given to grpc.Client. */
  readonly grpcTarget: string;
  /** Several sidecars (a list, or dns:///): round_robin, one unary call per request. */
  readonly balanced: boolean;
  /** Addresses known at start (a list), null when grpc-js resolves them (single, dns:///). */
  readonly addresses: readonly string[] | null;
  /**
   * The one host name every sidecar's TLS certificate is checked against when it is not the
   * target's own authority (a list of names turned into IP addresses); undefined otherwise.
   */
  readonly tlsServerName: string | undefined;
}

const PORT_TEXT = /^[0-9]+$/;
/** A host name as grpc-js and node:dns take it: no spaces, and none of the list's own separators. */
const HOST_NAME = /^[^\s:/,[\]@]+$/;

function hostPort(entry: string, where: string): HostPort {
  let host: string;
  let portText: string;
  let family: 4 | 6 | null;
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(entry);
  if (bracketed !== null) {
    [, host, portText] = bracketed;
    if (!isIPv6(host)) throw new SidecarTargetError(`'${entry}'${where} is not HOST:PORT: '[${host}]' is not an IPv6 address`);
    family = 6;
  } else {
    const colon = entry.lastIndexOf(':');
    host = colon < 0 ? entry : entry.slice(0, colon);
    portText = colon < 0 ? '' : entry.slice(colon + 1);
    if (colon < 0 || !HOST_NAME.test(host)) {
      const hint = isIPv6(entry) || isIPv6(host) ? ' (write an IPv6 address in brackets: [::1]:50051)' : '';
      throw new SidecarTargetError(`'${entry}'${where} is not HOST:PORT${hint}`);
    }
    family = isIPv4(host) ? 4 : null;
  }
  const port = PORT_TEXT.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new SidecarTargetError(`'${entry}'${where}: bad port '${portText}' (a port is 1 to 65535)`);
  return { host, port, family };
}

/** Checks the form of a target, without any lookup; throws SidecarTargetError saying what is wrong. */
export function parseSidecarTarget(text: string): ParsedSidecarTarget {
  if (text.trim() === '') throw new SidecarTargetError('empty: give HOST:PORT, a list HOST:PORT,HOST:PORT or dns:///NAME:PORT');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    const dns = /^dns:\/\/\/(.*)$/.exec(text);
    if (dns === null) {
      throw new SidecarTargetError(`'${text}': the only target scheme taken is dns:///NAME:PORT (no DNS server in it); otherwise HOST:PORT or a list of them`);
    }
    const { host, port, family } = hostPort(dns[1], ` in '${text}'`);
    if (family === 6) throw new SidecarTargetError(`'${text}': dns:/// takes a NAME, not an IPv6 address; give [ADDRESS]:PORT without dns:///`);
    return { kind: 'dns', text, name: host, port };
  }
  if (!text.includes(',')) {
    hostPort(text, ''); // checked; kept as written
    return { kind: 'single', text };
  }
  const parts = text.split(',');
  const entries = parts.map((part, i) => {
    const entry = part.trim();
    if (entry === '') throw new SidecarTargetError(`entry ${i + 1} of the list '${text}' is empty`);
    return hostPort(entry, ` (entry ${i + 1} of the list)`);
  });
  const v4 = entries.find((e) => e.family === 4);
  const v6 = entries.find((e) => e.family === 6);
  if (v4 !== undefined && v6 !== undefined) {
    throw new SidecarTargetError(
      `'${text}' mixes IPv4 (${v4.host}) and IPv6 ([${v6.host}]) addresses: grpc-js's ipv4:/ipv6: targets take one family; list one family, or use dns:///NAME:PORT`,
    );
  }
  return { kind: 'list', text, entries };
}

/**
 * Why a target cannot be used over TLS, or null: grpc-js checks every sidecar of a channel
 * against one name, so a list must name one host (several ports of it).
 */
export function tlsProblem(parsed: ParsedSidecarTarget): string | null {
  if (parsed.kind !== 'list') return null;
  const hosts = new Set(parsed.entries.map((e) => e.host.toLowerCase()));
  if (hosts.size <= 1) return null;
  return `'${parsed.text}' names ${hosts.size} hosts, but over TLS grpc-js checks every sidecar's certificate against one name: list one host (several ports), or use dns:///NAME:PORT with certificates for NAME`;
}

/** node:dns lookup with every address, as the resolution of names in a list uses it (replaceable in tests). */
export type LookupAll = (host: string) => Promise<{ address: string; family: number }[]>;

const lookupAll: LookupAll = (host) => lookup(host, { all: true });

function sidecarTargetOf(parsed: ParsedSidecarTarget & { kind: 'single' | 'dns' }): SidecarTarget {
  return { text: parsed.text, grpcTarget: parsed.text, balanced: parsed.kind === 'dns', addresses: null, tlsServerName: undefined };
}

/**
 * One sidecar, given to grpc-js exactly as written and as it always was (the client does not
 * second-guess it: `--sidecar` checks its form, SidecarClient takes whatever grpc-js takes).
 */
function singleTarget(text: string): SidecarTarget | null {
  if (text.includes(',') || /^dns:/i.test(text)) return null;
  return { text, grpcTarget: text, balanced: false, addresses: null, tlsServerName: undefined };
}

/**
 * The target for grpc-js: names of a list looked up now (every address of each; duplicates
 * dropped). One grpc-js target holds one address family: IPv4 when every entry has an IPv4
 * address, else IPv6 when every entry has an IPv6 one, else an error. With TLS, every sidecar of
 * a list is checked against one name (grpc-js checks one name per channel), so a TLS list must
 * name a single host.
 */
export async function resolveSidecarTarget(text: string, options: { tls?: boolean; lookup?: LookupAll } = {}): Promise<SidecarTarget> {
  const single = singleTarget(text);
  if (single !== null) return single;
  const parsed = parseSidecarTarget(text);
  if (parsed.kind !== 'list') return sidecarTargetOf(parsed);
  const problem = options.tls === true ? tlsProblem(parsed) : null;
  if (problem !== null) throw new SidecarTargetError(problem); // before any lookup
  const resolve = options.lookup ?? lookupAll;
  const resolved = await Promise.all(
    parsed.entries.map(async (entry) => {
      if (entry.family !== null) return { entry, addresses: [{ address: entry.host, family: entry.family }] };
      let found: { address: string; family: number }[];
      try {
        found = await resolve(entry.host);
      } catch (error) {
        throw new SidecarTargetError(`cannot resolve '${entry.host}' of the list '${text}': ${(error as Error).message}`);
      }
      if (found.length === 0) throw new SidecarTargetError(`'${entry.host}' of the list '${text}' resolves to no address`);
      return { entry, addresses: found };
    }),
  );
  return listTarget(parsed, resolved, options.tls === true);
}

/** The target of a list whose entries are all IP literals (no lookup), or null when it names hosts. */
export function literalSidecarTarget(text: string, tls = false): SidecarTarget | null {
  const single = singleTarget(text);
  if (single !== null) return single;
  const parsed = parseSidecarTarget(text);
  if (parsed.kind !== 'list') return sidecarTargetOf(parsed);
  if (parsed.entries.some((e) => e.family === null)) return null;
  return listTarget(
    parsed,
    parsed.entries.map((entry) => ({ entry, addresses: [{ address: entry.host, family: entry.family! }] })),
    tls,
  );
}

function listTarget(
  parsed: ParsedSidecarTarget & { kind: 'list' },
  resolved: { entry: HostPort; addresses: { address: string; family: number }[] }[],
  tls: boolean,
): SidecarTarget {
  const problem = tls ? tlsProblem(parsed) : null;
  if (problem !== null) throw new SidecarTargetError(problem);
  const family = resolved.every((r) => r.addresses.some((a) => a.family === 4)) ? 4 : resolved.every((r) => r.addresses.some((a) => a.family === 6)) ? 6 : null;
  if (family === null) {
    const only = (f: number): string =>
      resolved
        .filter((r) => r.addresses.every((a) => a.family === f))
        .map((r) => r.entry.host)
        .join(', ');
    throw new SidecarTargetError(
      `'${parsed.text}': ${only(4)} resolve(s) only to IPv4 and ${only(6)} only to IPv6; one grpc-js target takes one address family`,
    );
  }
  const addresses: string[] = [];
  for (const { entry, addresses: found } of resolved) {
    for (const a of found) {
      if (a.family !== family) continue;
      const address = family === 6 ? `[${a.address}]:${entry.port}` : `${a.address}:${entry.port}`;
      if (!addresses.includes(address)) addresses.push(address);
    }
  }
  const named = parsed.entries[0].family === null ? parsed.entries[0].host : undefined;
  return {
    text: parsed.text,
    grpcTarget: `ipv${family}:${addresses.join(',')}`,
    balanced: true,
    addresses,
    tlsServerName: tls ? named : undefined,
  };
}
