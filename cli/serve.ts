/**
 * `mim-sender-jid serve`: the gRPC sidecar, until SIGTERM or SIGINT (then a graceful stop, exit 0).
 * Every flag also reads from an environment variable (see --help).
 *
 * The signal handlers are installed first thing, before grpc, the workers or the configuration
 * are loaded: a SIGTERM during start-up is remembered, start-up finishes (a half-started pool
 * is never left behind), then the sidecar stops as it would once serving, and the exit is 0. A
 * second signal during the stop changes nothing.
 */
import type { Subcommand } from './cli.js';
import { ConfigError, loadConfig, usage } from '../services/sidecar/config.js';

let stopRequested: string | null = null;
let onStop: (() => void) | null = null;
const requestStop = (signal: string): void => {
  if (stopRequested !== null) return;
  stopRequested = signal;
  onStop?.();
};
const onSigterm = (): void => requestStop('SIGTERM');
const onSigint = (): void => requestStop('SIGINT');

function startListening(): void {
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
}

function stopListening(): void {
  process.off('SIGTERM', onSigterm);
  process.off('SIGINT', onSigint);
}

function startupLine(msg: string, extra: Record<string, unknown> = {}): void {
  // pino is not loaded yet: the same JSON line shape, by hand.
  process.stdout.write(JSON.stringify({ level: 30, time: Date.now(), service: 'mim-sender-jid', ...extra, msg }) + '\n');
}

const serve: Subcommand = {
  summary: 'serve the gRPC sidecar (SenderJidService, health, reflection, metrics)',
  async run(argv: string[]): Promise<number> {
    startListening();
    if (argv.includes('-h') || argv.includes('--help')) {
      stopListening();
      process.stdout.write(usage());
      return 0;
    }
    let config;
    try {
      config = loadConfig(argv);
    } catch (error) {
      stopListening();
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`mim-sender-jid serve: ${error.message}\n\n${usage()}`);
      return 2;
    }
    if (config.logLevel !== 'silent' && config.logLevel !== 'fatal' && config.logLevel !== 'error' && config.logLevel !== 'warn') {
      startupLine('sidecar starting', { pid: process.pid });
    }
    // Loaded only now, so that `--help` does not start grpc or threads.
    const { startSidecar } = await import('../services/sidecar/server.js');
    let sidecar;
    try {
      sidecar = await startSidecar(config);
    } catch (error) {
      stopListening();
      process.stderr.write(`mim-sender-jid serve: ${(error as Error).message}\n`);
      return 1;
    }
    const running = sidecar;
    await new Promise<void>((resolve) => {
      onStop = () => resolve();
      if (stopRequested !== null) resolve(); // a signal came during start-up
    });
    try {
      await running.shutdown();
    } catch (error) {
      process.stderr.write(`mim-sender-jid serve: shutdown failed: ${String(error)}\n`);
    }
    // Still listening: a signal during the stop is ignored, not the default exit 143. The handlers
    // keep no handle open, so the process ends on its own once the stop is done.
    return 0;
  },
};

export default serve;
