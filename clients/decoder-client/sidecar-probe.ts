/**
 * Before a run trusts a sidecar target, each sidecar is looked at once, below gRPC: a TCP
 * connection, TLS if we were told to speak it, the HTTP/2 preface, and the server's first frame.
 * grpc-js reports every one of those faults alike (UNAVAILABLE "Failed to connect", or a call that
 * waits for its deadline), and the pipeline retries UNAVAILABLE and DEADLINE_EXCEEDED as load: a
 * port held by something that accepts and stays silent cost 60 s per try, a TLS sidecar reached in
 * plaintext or with the wrong CA was retried for 14 minutes. None of those goes away by waiting,
 * so they end the run at once with what to fix (SidecarFaultError, not transient).
 *
 * What stays transient: a refused or unreachable address (a sidecar still starting, a pod being
 * replaced), a connection closed before anything was said. Those are left to the usual retries.
 *
 * Then the request limits of every sidecar known at start (each address of a list, every address
 * a dns:/// name resolves to now) are read from an empty unary call to it alone, and requests
 * are cut to the smallest of them: sidecars behind one target may run with different
 * --max-items-per-batch / --max-request-bytes (a rolling change of configuration).
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { RequestLimits } from '../../services/sidecar/request-limits.js';
import { SenderJidServiceDefinition } from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import { encodeBatch } from './batch-codec.js';
import { announcedLimits } from './request-sizing.js';
import { parseSidecarTarget, type SidecarTarget } from './sidecar-target.js';

/** A sidecar fault that waiting does not cure; grpc status FAILED_PRECONDITION, which no retry policy of ours retries. */
export class SidecarFaultError extends Error {
  readonly code = grpc.status.FAILED_PRECONDITION;
  readonly details: string;
  readonly metadata = new grpc.Metadata();
  constructor(message: string) {
    super(message);
    this.name = 'SidecarFaultError';
    this.details = message;
  }
}

export interface ProbeOptions {
  /** What we speak: undefined is plaintext. */
  readonly tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  /** The name certificates are checked against when it is not the address's host. */
  readonly tlsServerName?: string | undefined;
  /** Longest wait for one step (connect, handshake, first frame). Default 5 s. */
  readonly stepTimeoutMs?: number;
  /** Tries of a peer that stays silent before it is a fault. Default 3. */
  readonly silentTries?: number;
}

export const DEFAULT_PROBE_STEP_MS = 5_000;
export const DEFAULT_SILENT_TRIES = 3;

/** The client connection preface and an empty SETTINGS frame (RFC 9113 §3.4). */
const HTTP2_PREFACE = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
const SETTINGS_FRAME_TYPE = 4;
/** A TLS record's first byte: handshake (22) or alert (21). */
const TLS_RECORD_TYPES = new Set([21, 22]);

/** What one look at a peer found. */
type Look =
  | { readonly kind: 'http2' }
  | { readonly kind: 'unreachable'; readonly why: string }
  | { readonly kind: 'silent' }
  | { readonly kind: 'closed'; readonly firstBytes: Buffer }
  | { readonly kind: 'tls-failed'; readonly why: string; readonly certificate: boolean; readonly network: boolean };

interface HostPort {
  readonly host: string;
  readonly port: number;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/**
 * One connection: TLS or not, the HTTP/2 preface, and whatever comes back first. A peer that
 * accepts and then says nothing within the step timeout is 'silent'.
 */
function look(address: HostPort, useTls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | null, serverName: string | undefined, stepMs: number): Promise<Look> {
  return new Promise<Look>((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    let socket: net.Socket;
    let timer: NodeJS.Timeout;
    let connected = false;
    const finish = (outcome: Look): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(connected ? { kind: 'silent' } : { kind: 'unreachable', why: `no TCP connection within ${stepMs} ms` }), stepMs);
    };
    let handshaken = false;
    const onError = (error: NodeJS.ErrnoException): void => {
      const code = error.code ?? '';
      if (!connected) {
        finish({ kind: 'unreachable', why: error.message });
      } else if (useTls !== null && (!handshaken || /SSL|TLS|ALERT/i.test(code))) {
        // Certificate checks fail with OpenSSL's names (UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...) or ERR_TLS_CERT_*;
        // after the handshake an alert is the server refusing us (mutual TLS).
        finish({
          kind: 'tls-failed',
          why: `${code === '' ? '' : `${code}: `}${error.message}`,
          certificate: !/ALERT/i.test(code) && /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ALTNAME/i.test(code),
          network: NETWORK_CODES.has(code),
        });
      } else {
        finish({ kind: 'closed', firstBytes: received });
      }
    };
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= 9) {
        finish(received[3] === SETTINGS_FRAME_TYPE ? { kind: 'http2' } : { kind: 'closed', firstBytes: received });
      } else {
        arm();
      }
    };
    if (useTls === null) {
      socket = net.connect({ host: address.host, port: address.port });
      socket.once('connect', () => {
        connected = true;
        socket.write(HTTP2_PREFACE);
        arm();
      });
    } else {
      const servername = serverName ?? (net.isIP(address.host) === 0 ? address.host : undefined);
      const tlsSocket = tls.connect({
        host: address.host,
        port: address.port,
        ...(servername === undefined ? {} : { servername }),
        ca: useTls.ca,
        cert: useTls.cert,
        key: useTls.key,
        ALPNProtocols: ['h2'],
        ...(serverName === undefined ? {} : { checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(serverName, cert) }),
      });
      socket = tlsSocket;
      tlsSocket.once('connect', () => {
        connected = true;
        arm(); // the handshake
      });
      tlsSocket.once('secureConnect', () => {
        connected = true;
        handshaken = true;
        tlsSocket.write(HTTP2_PREFACE);
        arm();
      });
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', () => finish(connected ? { kind: 'closed', firstBytes: received } : { kind: 'unreachable', why: 'connection closed' }));
    arm();
  });
}

/**
 * The fault of one sidecar that no retry cures, or null (it speaks gRPC's HTTP/2 as we expect,
 * or it cannot be told now: unreachable, closed). Silence counts as a fault only after
 * `silentTries` looks in a row.
 */
export async function sidecarFault(address: HostPort, options: ProbeOptions = {}): Promise<string | null> {
  const stepMs = options.stepTimeoutMs ?? DEFAULT_PROBE_STEP_MS;
  const tries = Math.max(1, options.silentTries ?? DEFAULT_SILENT_TRIES);
  const where = `the sidecar at ${formatHostPort(address)}`;
  const ours = options.tls ?? null;
  for (let attempt = 1; ; attempt++) {
    const seen = await look(address, ours, options.tlsServerName, stepMs);
    switch (seen.kind) {
      case 'http2':
      case 'unreachable':
        return null;
      case 'silent':
        if (attempt < tries) continue;
        return `${where} accepts connections but sends nothing (${tries} tries, ${stepMs} ms each): it is not a sidecar, or it is stuck; check what listens on that port`;
      case 'tls-failed': {
        if (!seen.certificate) {
          const plain = await look(address, null, undefined, stepMs);
          if (plain.kind === 'http2') {
            return `${where} speaks plaintext, not TLS: drop --sidecar-ca/--sidecar-cert/--sidecar-key, or start the sidecar with --tls-cert and --tls-key`;
          }
          // A connection reset in the handshake, by a sidecar going away, is left to the retries.
          if (seen.network) return null;
          if (/ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN)/i.test(seen.why)) {
            return `${where} refused our TLS handshake (${firstLine(seen.why)}): it asks for a client certificate it trusts; pass --sidecar-cert and --sidecar-key signed by the CA of its --tls-client-ca`;
          }
          return `TLS handshake with ${where} failed (${firstLine(seen.why)}): check --sidecar-ca, --sidecar-cert and --sidecar-key against the sidecar's --tls-cert, --tls-key and --tls-client-ca`;
        }
        return `TLS to ${where} failed on its certificate (${firstLine(seen.why)}): pass the CA that signed it as --sidecar-ca, and check that the certificate names the host in --sidecar`;
      }
      case 'closed': {
        if (ours === null && (TLS_RECORD_TYPES.has(seen.firstBytes[0]) || seen.firstBytes.length === 0)) {
          const secure = await look(address, {}, undefined, stepMs);
          const speaksTls = secure.kind === 'http2' || (secure.kind === 'tls-failed' && secure.certificate);
          if (speaksTls) return `${where} speaks TLS: pass --sidecar-ca with the CA that signed its certificate`;
        }
        if (seen.firstBytes.length > 0) {
          return `${where} does not answer as an HTTP/2 (gRPC) server (first bytes: ${seen.firstBytes.subarray(0, 16).toString('hex')}): check the port`;
        }
        return null;
      }
    }
  }
}

/** OpenSSL's messages run over several lines, with source paths: the first part says it. */
function firstLine(text: string): string {
  return text
    .split('\n')[0]
    .replace(/\s*[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:([^:]*):.*$/, ' $1')
    .trim();
}

export function formatHostPort(address: HostPort): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function splitHostPort(text: string): HostPort {
  const bracketed = /^\[([^\]]*)\]:([0-9]+)$/.exec(text);
  if (bracketed !== null) return { host: bracketed[1], port: Number(bracketed[2]) };
  const colon = text.lastIndexOf(':');
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** Every sidecar a target names now: the addresses of a list, what dns:/// resolves to now, or the one HOST:PORT. */
export async function sidecarAddresses(target: SidecarTarget): Promise<HostPort[]> {
  if (target.addresses !== null) return target.addresses.map(splitHostPort);
  let parsed;
  try {
    parsed = parseSidecarTarget(target.text);
  } catch {
    return []; // a form only grpc-js knows: nothing to look at
  }
  if (parsed.kind === 'dns') {
    const found = await lookup(parsed.name, { all: true }).catch(() => []);
    return found.map((a) => ({ host: a.address, port: parsed.port }));
  }
  if (parsed.kind === 'single') return [splitHostPort(parsed.text)];
  return parsed.entries.map((e) => ({ host: e.host, port: e.port }));
}

/** Throws SidecarFaultError naming every sidecar of the target with a fault no retry cures. */
export async function checkSidecars(target: SidecarTarget, options: ProbeOptions = {}): Promise<void> {
  const addresses = await sidecarAddresses(target);
  const faults = await Promise.all(
    addresses.map((address) => sidecarFault(address, { ...options, tlsServerName: options.tlsServerName ?? target.tlsServerName })),
  );
  const found = faults.filter((f): f is string => f !== null);
  if (found.length > 0) throw new SidecarFaultError(found.join('; '));
}

/**
 * The smallest request limits any sidecar of the target announces now (each asked alone, by an
 * empty unary call), with who announced what; null when none could be asked.
 */
export async function smallestAnnouncedLimits(
  target: SidecarTarget,
  options: { tls?: ProbeOptions['tls']; deadlineMs?: number } = {},
): Promise<{ limits: RequestLimits; announced: { address: string; limits: RequestLimits }[] } | null> {
  const addresses = await sidecarAddresses(target);
  const credentials = (): grpc.ChannelCredentials =>
    options.tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(options.tls.ca ?? null, options.tls.key ?? null, options.tls.cert ?? null);
  const serverName = target.tlsServerName;
  const request = encodeBatch([]);
  const asked = await Promise.all(
    addresses.map(async (address) => {
      const text = formatHostPort(address);
      const client = new grpc.Client(
        text,
        credentials(),
        serverName === undefined ? {} : { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName },
      );
      try {
        const metadata = await new Promise<grpc.Metadata | null>((resolve) => {
          let received: grpc.Metadata | null = null;
          const call = client.makeUnaryRequest(
            `/${SenderJidServiceDefinition.fullName}/${SenderJidServiceDefinition.methods.extractSenderJid.name}`,
            (b: Buffer) => b,
            (b: Buffer) => b,
            request,
            new grpc.Metadata(),
            { deadline: Date.now() + (options.deadlineMs ?? 10_000) },
            (error) => resolve(error ? null : received),
          );
          call.on('metadata', (m: grpc.Metadata) => (received = m));
        });
        return metadata === null ? null : { address: text, limits: announcedLimits(metadata) };
      } finally {
        client.close();
      }
    }),
  );
  const announced = asked.filter((a): a is { address: string; limits: RequestLimits } => a !== null);
  if (announced.length === 0) return null;
  return {
    limits: {
      maxItemsPerBatch: Math.min(...announced.map((a) => a.limits.maxItemsPerBatch)),
      maxRequestBytes: Math.min(...announced.map((a) => a.limits.maxRequestBytes)),
    },
    announced,
  };
}
