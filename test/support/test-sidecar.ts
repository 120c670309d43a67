/**
 * An in-process sidecar as the suites start it: on a free loopback port, quiet, one worker.
 * A test passes only what it is about (a limit, TLS files, a test hook, more workers).
 */
import { startSidecar, type RunningSidecar, type StartOptions } from '../../services/sidecar/server.js';

export const TEST_SIDECAR_DEFAULTS: StartOptions = { listen: '127.0.0.1:0', logLevel: 'silent', poolSize: 1 };

export function startTestSidecar(options: StartOptions = {}): Promise<RunningSidecar> {
  return startSidecar({ ...TEST_SIDECAR_DEFAULTS, ...options });
}
