/**
 * A thin HTTP proxy in front of a real search server, for what the server cannot be made to do on
 * cue: it answers chosen requests itself (e.g. 429 to the first few partition-plan creates) and
 * forwards every other request unchanged, keeping the size of each answer it passed on.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedExchange {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** Bytes of the answer's body. */
  readonly responseBytes: number;
  /** True when the proxy answered itself. */
  readonly intercepted: boolean;
}

export interface ProxyAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** Answers a request itself, or undefined to forward it. */
export type Interceptor = (method: string, path: string, body: Buffer) => ProxyAnswer | undefined;

export interface SearchProxy {
  readonly url: string;
  readonly exchanges: ProxiedExchange[];
  close(): Promise<void>;
}

export async function startSearchProxy(target: string, intercept: Interceptor = () => undefined): Promise<SearchProxy> {
  const to = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const exchanges: ProxiedExchange[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const own = intercept(method, path, body);
      if (own !== undefined) {
        const text = Buffer.from(JSON.stringify(own.body), 'utf8');
        exchanges.push({ method, path, status: own.status, responseBytes: text.length, intercepted: true });
        res.writeHead(own.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': text.length });
        res.end(text);
        return;
      }
      const headers = { ...req.headers, host: to.host };
      const forward = http.request({ hostname: to.hostname, port: to.port, method, path, headers, agent }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () => {
          const text = Buffer.concat(parts);
          exchanges.push({ method, path, status: answer.statusCode ?? 0, responseBytes: text.length, intercepted: false });
          const out = { ...answer.headers, 'content-length': text.length };
          delete out['transfer-encoding'];
          res.writeHead(answer.statusCode ?? 502, out);
          res.end(text);
        });
        answer.on('error', () => res.destroy());
      });
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
