/**
 * A free TCP port on loopback for the demo's PostgreSQL and the tests' servers: bound and released,
 * so another process could take it in between (a tiny race; the server then fails to start with a
 * clear "address in use" message, and a second run picks another port).
 */
import { createServer } from 'node:net';

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
