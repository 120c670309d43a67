/**
 * A small encoder of Erlang external term format, enough for MongooseIM's archived messages:
 * what `term_to_binary(Packet)` and `term_to_binary(Packet, [compressed])` of OTP 19..25 write
 * for exml 3 records (`{xmlel, Name, Attrs, Children}`, `{xmlcdata, Content}`). Atoms use
 * ATOM_EXT (100), as those VMs do for Latin-1 atoms. Checked byte for byte against a real Erlang
 * VM in test/sql/term-encoder.test.ts; used by the demo and the benchmark, which need no Erlang.
 */
import { deflateSync } from 'node:zlib';

export type Term =
  | { readonly t: 'atom'; readonly v: string }
  | { readonly t: 'bin'; readonly v: Uint8Array }
  | { readonly t: 'tuple'; readonly v: readonly Term[] }
  | { readonly t: 'list'; readonly v: readonly Term[] }
  | { readonly t: 'int'; readonly v: number };

export const atom = (v: string): Term => ({ t: 'atom', v });
export const bin = (v: string | Uint8Array): Term => ({ t: 'bin', v: typeof v === 'string' ? Buffer.from(v, 'utf8') : v });
export const tuple = (...v: Term[]): Term => ({ t: 'tuple', v });
export const list = (...v: Term[]): Term => ({ t: 'list', v });
export const int = (v: number): Term => ({ t: 'int', v });

export type XmlNode = XmlElement | string;
export interface XmlElement {
  readonly name: string;
  readonly attrs?: readonly (readonly [string, string])[];
  readonly children?: readonly XmlNode[];
}

/** exml 3 record term of an element: `{xmlel, Name, [{K, V}...], Children}`. */
export function xmlTerm(node: XmlNode): Term {
  if (typeof node === 'string') return tuple(atom('xmlcdata'), bin(node));
  return tuple(atom('xmlel'), bin(node.name), list(...(node.attrs ?? []).map(([k, v]) => tuple(bin(k), bin(v)))), list(...(node.children ?? []).map(xmlTerm)));
}

export const MUC_USER_NS = 'http://jabber.org/protocol/muc#user';

export interface MucMessageSpec {
  /** The item's jid attribute (omit to leave it out). */
  readonly jid?: string;
  readonly type?: string;
  readonly body?: string;
  /** Leave out the muc#user `<x/>` entirely. */
  readonly withoutX?: boolean;
  readonly id?: string;
  readonly from?: string;
}

/** The element MongooseIM 3.3 archives for a classic MUC message (storage reference §0.2). */
export function mucMessage(spec: MucMessageSpec): XmlElement {
  const itemAttrs: [string, string][] = [['affiliation', 'member']];
  if (spec.jid !== undefined) itemAttrs.push(['jid', spec.jid]);
  itemAttrs.push(['role', 'participant']);
  const children: XmlNode[] = [{ name: 'body', children: [spec.body ?? 'hello'] }];
  if (!spec.withoutX) children.push({ name: 'x', attrs: [['xmlns', MUC_USER_NS]], children: [{ name: 'item', attrs: itemAttrs }] });
  return {
    name: 'message',
    attrs: [
      ['from', spec.from ?? 'room@muc.example.com/nick'],
      ['to', 'room@muc.example.com'],
      ['id', spec.id ?? 'm1'],
      ['type', spec.type ?? 'groupchat'],
    ],
    children,
  };
}

class Writer {
  private buf = Buffer.allocUnsafe(256);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.length);
    this.length += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.length);
    this.length += 4;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.length);
    this.length += 4;
  }
  bytes(v: Uint8Array): void {
    this.ensure(v.length);
    this.buf.set(v, this.length);
    this.length += v.length;
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

function writeTerm(w: Writer, term: Term): void {
  switch (term.t) {
    case 'atom': {
      const bytes = Buffer.from(term.v, 'latin1');
      if (bytes.length > 255) throw new RangeError('atom too long');
      w.u8(100);
      w.u16(bytes.length);
      w.bytes(bytes);
      return;
    }
    case 'bin':
      w.u8(109);
      w.u32(term.v.length);
      w.bytes(term.v);
      return;
    case 'tuple':
      if (term.v.length < 256) {
        w.u8(104);
        w.u8(term.v.length);
      } else {
        w.u8(105);
        w.u32(term.v.length);
      }
      for (const item of term.v) writeTerm(w, item);
      return;
    case 'list':
      if (term.v.length === 0) {
        w.u8(106);
        return;
      }
      w.u8(108);
      w.u32(term.v.length);
      for (const item of term.v) writeTerm(w, item);
      w.u8(106);
      return;
    case 'int':
      if (Number.isInteger(term.v) && term.v >= 0 && term.v < 256) {
        w.u8(97);
        w.u8(term.v);
      } else if (Number.isInteger(term.v) && term.v >= -(2 ** 31) && term.v < 2 ** 31) {
        w.u8(98);
        w.i32(term.v);
      } else {
        throw new RangeError(`integer out of supported range: ${term.v}`);
      }
      return;
  }
}

/** `term_to_binary(Term)`. */
export function termToBinary(term: Term): Buffer {
  const w = new Writer();
  w.u8(131);
  writeTerm(w, term);
  return w.result();
}

/**
 * `term_to_binary(Term, [compressed])`: tag 80, uncompressed size, zlib stream of the term
 * without its version byte. Like Erlang, falls back to the plain encoding when compressing would
 * not make it smaller.
 */
export function termToCompressedBinary(term: Term): Buffer {
  const plain = termToBinary(term);
  const body = plain.subarray(1);
  const deflated = deflateSync(body);
  if (deflated.length + 6 >= plain.length) return plain;
  const out = Buffer.allocUnsafe(6 + deflated.length);
  out[0] = 131;
  out[1] = 80;
  out.writeUInt32BE(body.length, 2);
  deflated.copy(out, 6);
  return out;
}
