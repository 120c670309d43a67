/**
 * Certificates for TLS tests, made by openssl in a temporary folder: a CA, a server certificate
 * for 127.0.0.1/localhost signed by it, a client certificate signed by it (mutual TLS), and a
 * client certificate from another CA, which a mutual-TLS server must refuse.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PemFile {
  readonly path: string;
  readonly pem: Buffer;
}

export interface TestCertificates {
  readonly dir: string;
  readonly ca: PemFile;
  readonly serverCert: PemFile;
  readonly serverKey: PemFile;
  readonly clientCert: PemFile;
  readonly clientKey: PemFile;
  /** Signed by a CA the server does not trust. */
  readonly strangerCert: PemFile;
  readonly strangerKey: PemFile;
  /** Removes the folder. */
  remove(): void;
}

const OPENSSL_TIMEOUT_MS = 30_000;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: OPENSSL_TIMEOUT_MS });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

function makeSigned(dir: string, name: string, ca: string, extensions: string): void {
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.crt`,
    '-days',
    '2',
    '-sha256',
    '-extfile',
    `${name}.ext`,
  ]);
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'mim-tls-'));
  try {
    makeCa(dir, 'test-ca');
    makeCa(dir, 'stranger-ca');
    makeSigned(
      dir,
      'server',
      'test-ca',
      'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
    );
    makeSigned(dir, 'client', 'test-ca', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    makeSigned(dir, 'stranger', 'stranger-ca', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`openssl could not make test certificates: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
  const file = (name: string): PemFile => ({ path: join(dir, name), pem: readFileSync(join(dir, name)) });
  return {
    dir,
    ca: file('test-ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    strangerCert: file('stranger.crt'),
    strangerKey: file('stranger.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
