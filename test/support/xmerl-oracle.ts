/**
 * Asks Erlang's xmerl, through test/support/xmerl-oracle.escript, what the reference tool answers
 * for XML payloads. One escript process per call, fed every payload at once, killed if it runs
 * past the deadline, so a test never leaves it behind.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

export type OracleAnswer = { readonly jid: string } | { readonly code: '-1' | '-2' };

const ESCRIPT = fileURLToPath(new URL('../../../test/support/xmerl-oracle.escript', import.meta.url));

export async function askXmerl(payloads: readonly Uint8Array[], deadlineMs = 300_000): Promise<OracleAnswer[]> {
  const input = Buffer.concat(payloads.flatMap((p) => [Buffer.from(`${p.length}\n`), Buffer.from(p)]));
  const child = spawn('escript', [ESCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => err.push(d));
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  try {
    const exit = new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve(code));
    });
    child.stdin.on('error', () => {
      /* reported through the exit status */
    });
    child.stdin.end(input);
    const code = await exit;
    if (code !== 0) {
      throw new Error(`xmerl oracle exited with ${code}: ${Buffer.concat(err).toString('utf8').slice(0, 2000)}`);
    }
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  const answers = parseAnswers(Buffer.concat(out));
  if (answers.length !== payloads.length) {
    throw new Error(`xmerl oracle answered ${answers.length} of ${payloads.length} payloads`);
  }
  return answers;
}

/** The reference's framing: `LENGTH\nJID`, `-1\n` or `-2\n`. */
function parseAnswers(out: Buffer): OracleAnswer[] {
  const answers: OracleAnswer[] = [];
  let i = 0;
  while (i < out.length) {
    const nl = out.indexOf(10, i);
    if (nl < 0) throw new Error(`xmerl oracle: truncated answer at byte ${i}`);
    const head = out.subarray(i, nl).toString('latin1');
    if (head === '-1' || head === '-2') {
      answers.push({ code: head });
      i = nl + 1;
    } else {
      const len = Number(head);
      if (!Number.isInteger(len) || len < 0) throw new Error(`xmerl oracle: bad length line ${JSON.stringify(head)}`);
      answers.push({ jid: out.subarray(nl + 1, nl + 1 + len).toString('utf8') });
      i = nl + 1 + len;
    }
  }
  return answers;
}

/** xmerl's XML name character classes (xmerl_lib:is_letter/1, is_namechar/1) as flat [first, last, ...] ranges. */
export async function xmerlNameCharRanges(): Promise<{ letters: number[]; nameChars: number[] }> {
  const { stdout } = await promisify(execFile)('escript', [ESCRIPT, 'name-chars'], { timeout: 300_000, maxBuffer: 1 << 20 });
  const classes = new Map<string, number[]>();
  for (const line of stdout.trim().split('\n')) {
    const [label, ...ranges] = line.trim().split(' ');
    classes.set(
      label,
      ranges.flatMap((r) => r.split('-').map(Number)),
    );
  }
  const letters = classes.get('letter');
  const nameChars = classes.get('namechar');
  if (!letters || !nameChars) throw new Error(`xmerl oracle: unexpected name-chars output ${stdout.slice(0, 200)}`);
  return { letters, nameChars };
}
