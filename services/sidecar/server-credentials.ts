/** The server's transport: plaintext, TLS, or mutual TLS, from the configured PEM files. */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { SidecarConfig } from './config.js';

/** Reads the PEM files named by --tls-cert, --tls-key and --tls-client-ca; a file that cannot be read names its flag. */
export function serverCredentials(config: SidecarConfig): grpc.ServerCredentials {
  if (config.tlsCert === null || config.tlsKey === null) return grpc.ServerCredentials.createInsecure();
  const read = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read ${flag} ${file}: ${(error as Error).message}`, { cause: error });
    }
  };
  const pair = { cert_chain: read(config.tlsCert, '--tls-cert'), private_key: read(config.tlsKey, '--tls-key') };
  const clientCa = config.tlsClientCa === null ? null : read(config.tlsClientCa, '--tls-client-ca');
  return grpc.ServerCredentials.createSsl(clientCa, [pair], clientCa !== null);
}
