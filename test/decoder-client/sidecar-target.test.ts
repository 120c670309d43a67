/**
 * What `--sidecar` and SidecarClient take as a target (clients/decoder-client/sidecar-target.ts):
 * one HOST:PORT kept as written; a list of IP literals turned into grpc-js's ipv4:/ipv6: target;
 * host names of a list looked up once (every address, one family, no duplicates); dns:/// handed
 * to grpc-js; every malformed target refused with a message that says what is wrong, also
 * through the command line's own parsing (exit-2 usage errors).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DECODER_USAGE, parseCommand, UsageError } from '../../cli/options.js';
import { loadBackend } from '../../clients/backends/registry.js';
import {
  literalSidecarTarget,
  parseSidecarTarget,
  resolveSidecarTarget,
  SidecarTargetError,
  type LookupAll,
} from '../../clients/decoder-client/sidecar-target.js';
import { SidecarClient } from '../../clients/decoder-client/sidecar-client.js';

/** A resolver that knows a few names, and counts its lookups. */
function fakeLookup(table: Record<string, [string, 4 | 6][]>): LookupAll & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (host: string) => {
    asked.push(host);
    const found = table[host];
    if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found.map(([address, family]) => ({ address, family }));
  };
  return Object.assign(lookup, { asked });
}

describe('sidecar targets', () => {
  it('keeps a single HOST:PORT as written: not balanced, nothing looked up', async () => {
    const lookup = fakeLookup({});
    for (const text of ['127.0.0.1:50051', 'sidecar.internal:50051', '[::1]:50051']) {
      assert.equal(parseSidecarTarget(text).kind, 'single');
      const target = await resolveSidecarTarget(text, { lookup });
      assert.deepEqual(target, { text, grpcTarget: text, balanced: false, addresses: null, tlsServerName: undefined });
    }
    assert.deepEqual(lookup.asked, []);
  });

  it('turns a list of IPv4 or IPv6 literals into an ipv4: or ipv6: target, without lookups', async () => {
    const lookup = fakeLookup({});
    const v4 = await resolveSidecarTarget('10.0.0.1:50051,10.0.0.2:50052, 10.0.0.3:50053', { lookup });
    assert.equal(v4.grpcTarget, 'ipv4:10.0.0.1:50051,10.0.0.2:50052,10.0.0.3:50053');
    assert.equal(v4.balanced, true);
    assert.deepEqual(v4.addresses, ['10.0.0.1:50051', '10.0.0.2:50052', '10.0.0.3:50053']);
    const v6 = await resolveSidecarTarget('[::1]:1,[fd00::7]:2', { lookup });
    assert.equal(v6.grpcTarget, 'ipv6:[::1]:1,[fd00::7]:2');
    assert.deepEqual(lookup.asked, []);
    // The constructor's synchronous path gives the same target.
    assert.deepEqual(literalSidecarTarget('10.0.0.1:50051,10.0.0.2:50052, 10.0.0.3:50053'), v4);
    assert.equal(literalSidecarTarget('a.test:1,10.0.0.1:2'), null, 'a list naming a host needs a lookup');
  });

  it('looks the names of a list up once, keeps every address of one family, drops duplicates', async () => {
    const lookup = fakeLookup({
      'a.test': [
        ['10.0.0.1', 4],
        ['10.0.0.2', 4],
        ['fd00::1', 6],
      ],
      'b.test': [
        ['fd00::3', 6],
        ['10.0.0.3', 4],
      ],
      'six.test': [['fd00::6', 6]],
      'both.test': [
        ['fd00::9', 6],
        ['10.0.0.9', 4],
      ],
    });
    const target = await resolveSidecarTarget('a.test:50051,b.test:50052,10.0.0.1:50051', { lookup });
    assert.equal(target.grpcTarget, 'ipv4:10.0.0.1:50051,10.0.0.2:50051,10.0.0.3:50052');
    assert.deepEqual(target.addresses, ['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50052']);
    assert.deepEqual(lookup.asked.sort(), ['a.test', 'b.test']);
    // IPv6 only when some entry has no IPv4 address but every entry has an IPv6 one.
    const v6 = await resolveSidecarTarget('six.test:1,both.test:2', { lookup });
    assert.equal(v6.grpcTarget, 'ipv6:[fd00::6]:1,[fd00::9]:2');
    await assert.rejects(resolveSidecarTarget('six.test:1,10.0.0.1:2', { lookup }), (error: Error) => {
      assert.ok(error instanceof SidecarTargetError);
      assert.match(error.message, /10\.0\.0\.1 resolve\(s\) only to IPv4 and six\.test only to IPv6; one grpc-js target takes one address family/);
      return true;
    });
    await assert.rejects(
      resolveSidecarTarget('a.test:1,nowhere.test:2', { lookup }),
      /cannot resolve 'nowhere\.test' of the list 'a\.test:1,nowhere\.test:2': getaddrinfo ENOTFOUND/,
    );
  });

  it('resolves real names with node:dns (localhost)', async () => {
    const target = await resolveSidecarTarget('localhost:50051,127.0.0.1:50052');
    assert.equal(target.grpcTarget, 'ipv4:127.0.0.1:50051,127.0.0.1:50052');
  });

  it('hands dns:///NAME:PORT to grpc-js: balanced, addresses unknown at start', async () => {
    const lookup = fakeLookup({});
    const target = await resolveSidecarTarget('dns:///sidecars.default.svc.cluster.local:50051', { lookup });
    assert.deepEqual(target, {
      text: 'dns:///sidecars.default.svc.cluster.local:50051',
      grpcTarget: 'dns:///sidecars.default.svc.cluster.local:50051',
      balanced: true,
      addresses: null,
      tlsServerName: undefined,
    });
    assert.deepEqual(lookup.asked, []);
  });

  it('refuses malformed targets, saying what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['x', /^'x' is not HOST:PORT$/],
      ['', /^empty/],
      ['a:1,,b:2', /^entry 2 of the list 'a:1,,b:2' is empty$/],
      ['a:1,', /^entry 2 of the list 'a:1,' is empty$/],
      ['a:1,b', /^'b' \(entry 2 of the list\) is not HOST:PORT$/],
      ['a:0', /^'a:0': bad port '0' \(a port is 1 to 65535\)$/],
      ['a:65536', /bad port '65536'/],
      ['a:1,b:http', /^'b:http' \(entry 2 of the list\): bad port 'http'/],
      ['a:', /^'a:': bad port ''/],
      ['::1:50051', /is not HOST:PORT \(write an IPv6 address in brackets: \[::1\]:50051\)/],
      ['[zz]:1', /'\[zz\]' is not an IPv6 address/],
      ['10.0.0.1:1,[::1]:2', /mixes IPv4 \(10\.0\.0\.1\) and IPv6 \(\[::1\]\) addresses/],
      ['dns:///sidecars', /^'sidecars' in 'dns:\/\/\/sidecars' is not HOST:PORT$/],
      ['dns://8.8.8.8/sidecars:50051', /the only target scheme taken is dns:\/\/\/NAME:PORT/],
      ['http://sidecar:50051', /the only target scheme taken is dns:\/\/\/NAME:PORT/],
      ['a b:1', /^'a b:1' is not HOST:PORT$/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseSidecarTarget(text),
        (error: Error) => {
          assert.ok(error instanceof SidecarTargetError, `${text}: ${String(error)}`);
          assert.match(error.message, message, text);
          return true;
        },
      );
    }
  });

  it('over TLS, a list must name one host (grpc-js checks one name per channel); its name is checked, not the addresses', async () => {
    await assert.rejects(resolveSidecarTarget('a.test:1,b.test:2', { tls: true, lookup: fakeLookup({}) }), /names 2 hosts, but over TLS/);
    const lookup = fakeLookup({
      'sidecars.test': [
        ['10.0.0.1', 4],
        ['10.0.0.2', 4],
      ],
    });
    const target = await resolveSidecarTarget('sidecars.test:50051,sidecars.test:50052', { tls: true, lookup });
    assert.equal(target.grpcTarget, 'ipv4:10.0.0.1:50051,10.0.0.2:50051,10.0.0.1:50052,10.0.0.2:50052');
    assert.equal(target.tlsServerName, 'sidecars.test');
    assert.equal((await resolveSidecarTarget('sidecars.test:50051,sidecars.test:50052', { lookup })).tlsServerName, undefined);
  });

  it('SidecarClient: lists of IP literals and dns:/// in the constructor, names only through open()', async () => {
    const literal = new SidecarClient({ address: '127.0.0.1:1,127.0.0.1:2' });
    assert.equal(literal.target.balanced, true);
    assert.equal(literal.maxInFlightBatches, 8, '4 per listed sidecar by default');
    literal.close();
    const dns = new SidecarClient({ address: 'dns:///localhost:1' });
    assert.equal(dns.maxInFlightBatches, 16);
    dns.close();
    const single = new SidecarClient({ address: '127.0.0.1:1' });
    assert.equal(single.target.balanced, false);
    assert.equal(single.maxInFlightBatches, 4);
    single.close();
    assert.throws(() => new SidecarClient({ address: 'localhost:1,localhost:2' }), /names hosts: use SidecarClient\.open\(\)/);
    const named = await SidecarClient.open({ address: 'localhost:1,localhost:2', maxInFlightBatches: 3 });
    assert.equal(named.target.grpcTarget, 'ipv4:127.0.0.1:1,127.0.0.1:2');
    assert.equal(named.maxInFlightBatches, 3, 'an explicit bound wins');
    named.close();
  });
});

describe('--sidecar on the command line', () => {
  async function usageError(args: string[]): Promise<string> {
    const definition = await loadBackend('postgres');
    try {
      parseCommand(['postgres', '--url', 'postgres://x/y', ...args], definition, 'migrate');
    } catch (error) {
      assert.ok(error instanceof UsageError, String(error));
      return error.message;
    }
    assert.fail(`${args.join(' ')} was accepted`);
  }

  it('accepts one sidecar, a list and dns:///', async () => {
    const definition = await loadBackend('postgres');
    for (const sidecar of ['127.0.0.1:50051', 'a:1,b:2,c:3', '[::1]:1,[::2]:2', 'dns:///sidecars:50051']) {
      assert.equal(parseCommand(['postgres', '--url', 'postgres://x/y', '--sidecar', sidecar], definition, 'migrate').decoder.sidecar, sidecar);
    }
  });

  it('refuses a bad --sidecar with a specific message', async () => {
    assert.equal(await usageError(['--sidecar', 'x']), `--sidecar: 'x' is not HOST:PORT`);
    assert.equal(await usageError(['--sidecar', 'a:1,,b:2']), `--sidecar: entry 2 of the list 'a:1,,b:2' is empty`);
    assert.equal(await usageError(['--sidecar', 'a:1,b:99999']), `--sidecar: 'b:99999' (entry 2 of the list): bad port '99999' (a port is 1 to 65535)`);
    assert.match(await usageError(['--sidecar', 'dns://1.1.1.1/x:1']), /^--sidecar: .*only target scheme taken is dns:\/\/\/NAME:PORT/);
    assert.match(await usageError(['--sidecar', 'a:1,b:2', '--sidecar-ca', '/dev/null']), /^--sidecar: 'a:1,b:2' names 2 hosts, but over TLS/);
  });

  it('the usage text describes the three forms and what re-resolves', () => {
    assert.match(DECODER_USAGE, /--sidecar TARGET/);
    assert.match(DECODER_USAGE, /HOST:PORT,HOST:PORT,\.\.\./);
    assert.match(DECODER_USAGE, /looked up\s+once at start, never again/);
    assert.match(DECODER_USAGE, /dns:\/\/\/NAME:PORT/);
    assert.match(DECODER_USAGE, /round_robin/);
  });
});
