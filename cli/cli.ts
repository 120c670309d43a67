/**
 * The one command, `mim-sender-jid SUBCOMMAND ...`. Each subcommand lives in its own file and is
 * loaded only when asked for, so `stdio` does not pay for gRPC or database drivers at start-up.
 */
export interface Subcommand {
  /** One line for the usage text. */
  readonly summary: string;
  /** Runs the subcommand; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

const SUBCOMMANDS: Record<string, () => Promise<{ default: Subcommand }>> = {
  stdio: () => import('./stdio.js'),
  extract: () => import('./extract.js'),
  serve: () => import('./serve.js'),
  migrate: () => import('./migrate.js'),
  verify: () => import('./verify.js'),
  demo: () => import('./demo.js'),
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    await printUsage(name === undefined ? process.stderr : process.stdout);
    return name === undefined ? 2 : 0;
  }
  const load = SUBCOMMANDS[name];
  if (load === undefined) {
    process.stderr.write(`mim-sender-jid: unknown subcommand '${name}'\n`);
    await printUsage(process.stderr);
    return 2;
  }
  const { default: subcommand } = await load();
  return subcommand.run(rest);
}

async function printUsage(out: NodeJS.WritableStream): Promise<void> {
  const lines = ['usage: mim-sender-jid <subcommand> [options]   (mim-sender-jid <subcommand> --help for its options)', ''];
  for (const [name, load] of Object.entries(SUBCOMMANDS)) {
    const { default: subcommand } = await load();
    lines.push(`  ${name.padEnd(9)} ${subcommand.summary}`);
  }
  out.write(lines.join('\n') + '\n');
}
