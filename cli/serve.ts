/**
 * `mim-sender-jid serve`: the gRPC sidecar, until SIGTERM or SIGINT (then a graceful stop, exit 0).
 * Every flag also reads from an environment variable (see --help).
 */
import type { Subcommand } from './cli.js';
import { ConfigError, loadConfig, usage } from '../services/sidecar/config.js';

const serve: Subcommand = {
  summary: 'serve the gRPC sidecar (SenderJidService, health, reflection, metrics)',
  async run(argv: string[]): Promise<number> {
    if (argv.includes('-h') || argv.includes('--help')) {
      process.stdout.write(usage());
      return 0;
    }
    let config;
    try {
      config = loadConfig(argv);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`mim-sender-jid serve: ${error.message}\n\n${usage()}`);
      return 2;
    }
    // Loaded only now, so that `--help` does not start grpc or threads.
    const { startSidecar } = await import('../services/sidecar/server.js');
    let sidecar;
    try {
      sidecar = await startSidecar(config);
    } catch (error) {
      process.stderr.write(`mim-sender-jid serve: ${(error as Error).message}\n`);
      return 1;
    }
    const running = sidecar;
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        running.shutdown().then(resolve, (error: unknown) => {
          process.stderr.write(`mim-sender-jid serve: shutdown failed: ${String(error)}\n`);
          resolve();
        });
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return 0;
  },
};

export default serve;
