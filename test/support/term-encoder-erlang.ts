/**
 * The oracle for the JS term encoder, and the maker of real Erlang payloads for the database
 * suites: one `erl -noshell` run encodes many terms with `term_to_binary/1,2` and checks that
 * `binary_to_term/1` of the given bytes gives back the same term.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Term } from '../../cli/demo/term-encoder.js';

const ERL_TIMEOUT_MS = 120_000;

export function erlangSource(term: Term): string {
  switch (term.t) {
    case 'atom':
      return `'${term.v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    case 'bin':
      return `<<${Array.from(term.v).join(',')}>>`;
    case 'int':
      return String(term.v);
    case 'tuple':
      return `{${term.v.map(erlangSource).join(',')}}`;
    case 'list':
      return `[${term.v.map(erlangSource).join(',')}]`;
  }
}

export interface ErlangEncoding {
  /** `term_to_binary(T)` */
  readonly plain: Buffer;
  /** `term_to_binary(T, [compressed])` */
  readonly compressed: Buffer;
  /** Whether `binary_to_term` of each checked payload equals T (one entry per payload given). */
  readonly checks: boolean[];
}

/**
 * Encodes each term with a real Erlang VM; `check[i]` (optional) are payloads that Erlang must
 * decode back to `terms[i]`.
 */
export function erlangEncode(terms: readonly Term[], check: readonly (readonly Uint8Array[])[] = []): ErlangEncoding[] {
  const dir = mkdtempSync(join(tmpdir(), 'mim-erl-'));
  try {
    const input = join(dir, 'terms.txt');
    const output = join(dir, 'out.txt');
    const lines = terms.map((term, i) => {
      const payloads = (check[i] ?? []).map((p) => `<<${Array.from(p).join(',')}>>`);
      return `{${erlangSource(term)}, [${payloads.join(',')}]}.\n`;
    });
    writeFileSync(input, lines.join(''));
    const program = `
      {ok, Items} = file:consult("${input}"),
      Out = [begin
               P = term_to_binary(T),
               C = term_to_binary(T, [compressed]),
               Oks = [(catch binary_to_term(X)) =:= T || X <- Checks],
               [binary:encode_hex(P), " ", binary:encode_hex(C), " ",
                lists:join(",", [atom_to_list(O) || O <- Oks]), " .\\n"]
             end || {T, Checks} <- Items],
      ok = file:write_file("${output}", Out),
      halt(0).`;
    const result = spawnSync('erl', ['-noshell', '-eval', program], { encoding: 'utf8', timeout: ERL_TIMEOUT_MS });
    if (result.status !== 0) {
      throw new Error(`erl failed (status ${result.status}, ${result.error?.message ?? ''}): ${result.stdout}\n${result.stderr}`);
    }
    return readFileSync(output, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((line) => {
        const [plain, compressed, oks] = line.split(' ');
        return {
          plain: Buffer.from(plain, 'hex'),
          compressed: Buffer.from(compressed, 'hex'),
          checks: oks === '' || oks === '.' ? [] : oks.split(',').map((o) => o === 'true'),
        };
      });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
