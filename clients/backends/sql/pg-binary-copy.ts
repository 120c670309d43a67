/**
 * Reads a page with `COPY (SELECT ...) TO STDOUT (FORMAT binary)`: `pg` reads every result column
 * as text, so a `bytea` payload crosses the wire as hex (twice its size) and is hex-decoded again;
 * binary COPY gives the raw bytes. COPY takes no bind parameters, so the page's parameters (all
 * integers: keys, shard, limits) are inlined as validated literals, never as text from outside.
 */
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { SqlRow, SqlStatement } from './sql-dialect.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const INTEGER = /^-?\d{1,20}$/;

/** `integer`: int2, int4 or int8 by its length (a schema may have widened `room_id`); `text`: UTF-8; `bytea`: raw; `boolean`: one byte. */
export type ColumnType = 'integer' | 'text' | 'bytea' | 'boolean';

/** `$n` replaced by its parameter, which must be an integer (a negative one in parentheses). */
export function inlineIntegerParams(statement: SqlStatement): string {
  return statement.sql.replace(/\$(\d+)/g, (_, n: string) => {
    const value = statement.params[Number(n) - 1];
    const text = typeof value === 'number' || typeof value === 'bigint' ? String(value) : value;
    if (typeof text !== 'string' || !INTEGER.test(text)) throw new Error(`binary COPY: parameter $${n} is not an integer`);
    // In parentheses when negative: a cast binds before the sign, so -9223372036854775808::bigint
    // would cast 9223372036854775808 (out of range) and negate it.
    return text.startsWith('-') ? `(${text})` : text;
  });
}

/**
 * The rows of a binary COPY stream: one column of `types` per field, payloads as views of one
 * buffer. Integers and text are read in place: a view per field (a Buffer object each) cost the
 * page's reader as much as the rest of the parse.
 */
export function parseBinaryCopy(data: Buffer, names: readonly string[], types: readonly ColumnType[]): SqlRow[] {
  if (data.length < 19 || !data.subarray(0, 11).equals(SIGNATURE)) throw new Error('binary COPY: bad signature');
  let pos = 15 + 4 + data.readUInt32BE(15); // flags, then the header extension
  const rows: SqlRow[] = [];
  for (;;) {
    const fields = data.readInt16BE(pos);
    pos += 2;
    if (fields === -1) return rows;
    if (fields !== types.length) throw new Error(`binary COPY: ${fields} fields, expected ${types.length}`);
    const row: SqlRow = {};
    for (let i = 0; i < fields; i++) {
      const length = data.readInt32BE(pos);
      pos += 4;
      if (length < 0) {
        row[names[i]] = null;
        continue;
      }
      if (pos + length > data.length) throw new Error('binary COPY: a field runs past the end of the data');
      const type = types[i];
      row[names[i]] =
        type === 'integer'
          ? readInteger(data, pos, length)
          : type === 'text'
            ? data.toString('utf8', pos, pos + length)
            : type === 'boolean'
              ? readBoolean(data, pos, length)
              : data.subarray(pos, pos + length);
      pos += length;
    }
    rows.push(row);
  }
}

export async function copyRowsBinary(
  client: pg.PoolClient,
  statement: SqlStatement,
  names: readonly string[],
  types: readonly ColumnType[],
): Promise<SqlRow[]> {
  const stream = client.query(copyTo(`COPY (${inlineIntegerParams(statement)}) TO STDOUT (FORMAT binary)`));
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return parseBinaryCopy(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), names, types);
}

function readInteger(data: Buffer, pos: number, length: number): string {
  switch (length) {
    case 2:
      return String(data.readInt16BE(pos));
    case 4:
      return String(data.readInt32BE(pos));
    case 8: {
      // Two 32-bit halves: exact as a Number below 2^53, else through BigInt.
      const high = data.readInt32BE(pos);
      const low = data.readUInt32BE(pos + 4);
      if (high >= -0x200000 && high < 0x200000) return String(high * 0x100000000 + low);
      return String(data.readBigInt64BE(pos));
    }
    default:
      throw new Error(`binary COPY: an integer field of ${length} bytes`);
  }
}

function readBoolean(data: Buffer, pos: number, length: number): boolean {
  if (length !== 1) throw new Error(`binary COPY: a boolean field of ${length} bytes`);
  return data[pos] !== 0;
}
