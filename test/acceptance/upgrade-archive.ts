/**
 * The archive the upgrade's acceptance suite (upgrade-suite.ts) takes from MongooseIM 3.3 to
 * 6.2.1: both tables, every payload made by a real Erlang VM (`term_to_binary/1` and `/2
 * [compressed]`, alternating), and what MongooseIM must find in it afterwards.
 *
 * - `mam_muc_message` (rooms hall, dev, ops): messages from several senders, spelled in several
 *   ways, whose origin-ids repeat within a room (one sender's repeats: the newest one is the one
 *   to retract; other senders' same id: not theirs), some without an origin-id or with one in
 *   another namespace, one id with a quote and a backslash; and records whose sender is unknown
 *   (an item without jid, a chat message) or that are no term at all.
 * - `mam_message` (alice's and bob's archives): chat both ways with a peer on the same server
 *   and one on another, groupchat copies from a room, `normal` and untyped messages, origin-ids
 *   shared between peers and directions, and none.
 *
 * Nothing about a payload's answers is written here: the sender is Erlang's answer for its eterm
 * (erlangOracle), origin_id and is_groupchat are MongooseIM's own functions run by Erlang
 * (erlangFieldOracle). The expected lookups are computed from those answers.
 */
import type { NotWrittenReason } from '../../clients/pipeline/types.js';
import { MUC_USER_NS, xmlTerm, type XmlElement, type XmlNode } from '../../cli/demo/term-encoder.js';
import { erlangFieldOracle, type ExpectedGroupchat, type ExpectedOriginId } from '../support/erlang-fields.js';
import { erlangOracle } from '../support/erlang-payloads.js';
import { erlangEncode } from '../support/term-encoder-erlang.js';
import { bareJid, minifiedBareJid, type BareJid } from './mongooseim-upgrade-sql.js';

export const SERVER = 'localhost';
export const MUC_HOST = 'muc.localhost';
export const ROOMS = ['hall', 'dev', 'ops'];
export const OWNERS = ['alice@localhost', 'bob@localhost'];
/** Asked about too, and must find nothing: a user with no message anywhere. */
export const STRANGER = 'dave@localhost';

const SENDER_SPELLINGS: readonly (readonly string[])[] = [
  ['Alice@LocalHost/phone', 'alice@localhost/laptop'],
  ['bob@localhost/r'],
  ['carol@example.org/home', 'CAROL@Example.org'],
];
/** Each owner's peers: one on the owner's server, one elsewhere; and the room its groupchat copies come from. */
const PEERS: Record<string, { readonly peers: readonly string[]; readonly room: string }> = {
  'alice@localhost': { peers: ['bob@localhost/desk', 'carol@example.org/home'], room: 'hall' },
  'bob@localhost': { peers: ['alice@localhost/phone', 'carol@example.org/tab'], room: 'dev' },
};

const NS_STANZAID = 'urn:xmpp:sid:0';
const QUOTED_ORIGIN = "it's \\ o-3";

export interface MucRecord {
  readonly id: string;
  readonly room: number;
  readonly payload: Buffer;
  readonly what: string;
  /** Erlang's bare JID for the sender, or null (then `reason` says why the sender walk reports it). */
  readonly sender: string | null;
  readonly reason: NotWrittenReason | null;
  readonly originId: ExpectedOriginId;
}

export interface PmRecord {
  readonly id: string;
  readonly owner: string;
  /** The remote JID (full) as MongooseIM 3.3 archived it: peer or room occupant. */
  readonly remote: string;
  readonly direction: 'I' | 'O';
  readonly payload: Buffer;
  readonly what: string;
  readonly originId: ExpectedOriginId;
  readonly isGroupchat: ExpectedGroupchat;
}

export interface UpgradeArchive {
  readonly muc: readonly MucRecord[];
  readonly pm: readonly PmRecord[];
}

const FIRST_ID = 399582233150625537n;

const originChild = (id: string, ns = NS_STANZAID): XmlElement => ({
  name: 'origin-id',
  attrs: [
    ['xmlns', ns],
    ['id', id],
  ],
});
const body = (text: string): XmlElement => ({ name: 'body', children: [text] });

interface MucDraft {
  readonly room: number;
  readonly element: XmlElement | null;
  readonly what: string;
  /** The bare JID the generator meant, checked against Erlang's answer. */
  readonly meant: string | null;
}

interface PmDraft {
  readonly owner: string;
  readonly remote: string;
  readonly direction: 'I' | 'O';
  readonly element: XmlElement;
  readonly what: string;
}

/** The origin-id children of the k-th message: shared ids, none, another namespace, a unique id, the quoted one. */
function mucOrigin(k: number, n: number): { children: XmlNode[]; what: string } {
  switch (k % 6) {
    case 0:
      return { children: [originChild('o-1')], what: 'o-1' };
    case 1:
      return { children: [originChild('o-2')], what: 'o-2' };
    case 2:
      return { children: [], what: 'no origin-id' };
    case 3:
      return { children: [originChild('o-1', 'urn:xmpp:sid:1')], what: 'origin-id in another namespace' };
    case 4:
      return { children: [originChild(`u-${n}`)], what: `u-${n}` };
    default:
      return { children: [originChild(QUOTED_ORIGIN)], what: 'quoted origin-id' };
  }
}

function mucElement(room: number, nick: string, itemJid: string | undefined, type: string, origin: XmlNode[], text: string): XmlElement {
  const item: XmlElement = {
    name: 'item',
    attrs: [['affiliation', 'member'], ...(itemJid === undefined ? [] : [['jid', itemJid] as const]), ['role', 'participant']],
  };
  return {
    name: 'message',
    attrs: [
      ['from', `${ROOMS[room]}@${MUC_HOST}/${nick}`],
      ['to', `${ROOMS[room]}@${MUC_HOST}`],
      ['id', `m-${text.length}-${nick}`],
      ['type', type],
    ],
    children: [body(text), ...origin, { name: 'x', attrs: [['xmlns', MUC_USER_NS]], children: [item] }],
  };
}

function mucDrafts(perSpelling: number): MucDraft[] {
  const drafts: MucDraft[] = [];
  const spellings = SENDER_SPELLINGS.flatMap((group, g) => group.map((jid) => ({ jid, g })));
  for (let k = 0; k < perSpelling; k++) {
    for (const [s, { jid, g }] of spellings.entries()) {
      const room = (k + g) % ROOMS.length;
      const origin = mucOrigin(k + s, drafts.length);
      const nick = jid.split('@')[0].toLowerCase();
      const meant = `${bareJid(jid).user}@${bareJid(jid).server}`;
      drafts.push({
        room,
        element: mucElement(room, nick, jid, 'groupchat', origin.children, `message ${drafts.length}`),
        what: `${jid}, ${origin.what}`,
        meant,
      });
    }
    if (k % 3 === 0) {
      const room = k % ROOMS.length;
      // The sender cannot be known: MongooseIM cannot have stored sender_id for these.
      drafts.push({
        room,
        element: mucElement(room, 'anon', undefined, 'groupchat', [originChild('o-1')], `no jid ${k}`),
        what: 'item without jid, o-1',
        meant: null,
      });
      drafts.push({
        room,
        element: mucElement(room, 'bob', 'bob@localhost/r', 'chat', [originChild('o-2')], `chat ${k}`),
        what: 'chat in a room, o-2',
        meant: null,
      });
      drafts.push({ room, element: null, what: 'no term', meant: null });
    }
  }
  return drafts;
}

function pmElement(owner: string, remote: string, direction: 'I' | 'O', type: string | null, origin: XmlNode[], text: string, groupchat: boolean): XmlElement {
  const ownerFull = `${owner}/res`;
  const attrs: [string, string][] = [
    ['from', direction === 'I' ? remote : ownerFull],
    ['to', direction === 'I' ? ownerFull : remote],
    ['id', `c-${text.length}`],
  ];
  if (type !== null) attrs.push(['type', type]);
  const extra: XmlNode[] = groupchat ? [{ name: 'x', attrs: [['xmlns', MUC_USER_NS]], children: [] }] : [];
  return { name: 'message', attrs, children: [body(text), ...origin, ...extra] };
}

function pmDrafts(perOwner: number): PmDraft[] {
  const drafts: PmDraft[] = [];
  for (let k = 0; k < perOwner; k++) {
    for (const [o, owner] of OWNERS.entries()) {
      const { peers, room } = PEERS[owner];
      const n = drafts.length;
      const originPick = (k + o) % 4;
      const origin = originPick === 0 ? [originChild('p-1')] : originPick === 1 ? [originChild('p-2')] : originPick === 2 ? [] : [originChild(`q-${n}`)];
      const what = originPick === 2 ? 'no origin-id' : (origin[0] as XmlElement).attrs![1][1];
      const text = `pm ${n}`;
      switch (k % 6) {
        case 0:
        case 1:
        case 2:
        case 3: {
          const peer = peers[(k >> 1) % 2];
          const direction = k % 2 === 0 ? 'I' : 'O';
          drafts.push({
            owner,
            remote: peer,
            direction,
            element: pmElement(owner, peer, direction, 'chat', origin, text, false),
            what: `chat ${direction} ${peer}, ${what}`,
          });
          break;
        }
        case 4: {
          const occupant = `${room}@${MUC_HOST}/${k % 2 === 0 ? 'carol' : 'bob'}`;
          drafts.push({
            owner,
            remote: occupant,
            direction: 'I',
            element: pmElement(owner, occupant, 'I', 'groupchat', origin, text, true),
            what: `groupchat copy from ${room}, ${what}`,
          });
          break;
        }
        default: {
          const type = k % 12 === 5 ? 'normal' : null;
          drafts.push({
            owner,
            remote: peers[0],
            direction: 'I',
            element: pmElement(owner, peers[0], 'I', type, origin, text, false),
            what: `${type ?? 'untyped'} from ${peers[0]}, ${what}`,
          });
        }
      }
    }
  }
  return drafts;
}

function senderOutcome(answer: ReturnType<typeof erlangOracle>[number]): { sender: string | null; reason: NotWrittenReason | null } {
  if (!('jid' in answer)) return { sender: null, reason: answer.code === '-2' ? 'not_groupchat' : 'malformed' };
  return { sender: answer.jid, reason: null };
}

/** `perSpelling` room messages per sender spelling (and the unknown ones), `perOwner` one-to-one messages per owner. */
export function buildUpgradeArchive(perSpelling = 8, perOwner = 12): UpgradeArchive {
  const muc = mucDrafts(perSpelling);
  const pm = pmDrafts(perOwner);
  const elements = [...muc.flatMap((d) => (d.element === null ? [] : [d.element])), ...pm.map((d) => d.element)];
  const encoded = erlangEncode(elements.map(xmlTerm));
  let next = 0;
  let n = 0;
  const take = (): Buffer => {
    const e = encoded[next++];
    return n++ % 2 === 0 ? e.plain : e.compressed;
  };
  const mucPayloads = muc.map((d) => (d.element === null ? Buffer.from([131, 1, 2, 3]) : take()));
  const pmPayloads = pm.map(() => take());
  const senders = erlangOracle(mucPayloads);
  const fields = erlangFieldOracle([...mucPayloads, ...pmPayloads]);
  // Ids rise in the order the messages were made, interleaving the tables.
  const id = (i: number): string => String(FIRST_ID + BigInt(i) * 4096n);
  const mucRecords = muc.map((d, i): MucRecord => {
    const outcome = senderOutcome(senders[i]);
    if (outcome.sender !== d.meant) throw new Error(`upgrade archive: Erlang reads sender ${outcome.sender} from ${d.what}, meant ${d.meant}`);
    return { id: id(i), room: d.room, payload: mucPayloads[i], what: d.what, ...outcome, originId: fields[i].originId };
  });
  const pmRecords = pm.map((d, i): PmRecord => ({
    id: id(muc.length + i),
    owner: d.owner,
    remote: d.remote,
    direction: d.direction,
    payload: pmPayloads[i],
    what: d.what,
    originId: fields[muc.length + i].originId,
    isGroupchat: fields[muc.length + i].isGroupchat,
  }));
  return { muc: mucRecords, pm: pmRecords };
}

/** The origin-id MongooseIM stores for a record (null: none, or a payload that gives none). */
export const storedOriginId = (o: ExpectedOriginId): string | null => (o === 'malformed' ? null : o.originId);

const newest = (ids: readonly string[]): string | null => (ids.length === 0 ? null : ids.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b)));

export interface MucLookup {
  readonly room: number;
  readonly sender: string;
  readonly originId: string;
  /** The message MongooseIM 3.7 would retract, or null. */
  readonly expected: string | null;
}

/** Every (room, sender or stranger, origin-id seen in the room): the newest message with that origin-id from that sender in that room. */
export function mucLookups(archive: UpgradeArchive): MucLookup[] {
  const senders = [...new Set(archive.muc.flatMap((r) => (r.sender === null ? [] : [r.sender]))), STRANGER].sort();
  const lookups: MucLookup[] = [];
  for (const [room] of ROOMS.entries()) {
    const inRoom = archive.muc.filter((r) => r.room === room);
    const origins = [...new Set(inRoom.flatMap((r) => storedOriginId(r.originId) ?? []))].sort();
    for (const sender of senders) {
      for (const originId of origins) {
        const ids = inRoom.filter((r) => r.sender === sender && storedOriginId(r.originId) === originId).map((r) => r.id);
        lookups.push({ room, sender, originId, expected: newest(ids) });
      }
    }
  }
  return lookups;
}

export interface PmLookup {
  readonly owner: string;
  /** The remote bare JID the retraction names. */
  readonly remote: string;
  readonly originId: string;
  readonly direction: 'I' | 'O';
  readonly expected: string | null;
}

const bare = (jid: string): string => {
  const b = bareJid(jid);
  return `${b.user}@${b.server}`;
};

/** Every (owner, remote or stranger, origin-id seen in the owner's archive, direction): the newest such message. */
export function pmLookups(archive: UpgradeArchive): PmLookup[] {
  const lookups: PmLookup[] = [];
  for (const owner of OWNERS) {
    const mine = archive.pm.filter((r) => r.owner === owner);
    const remotes = [...new Set(mine.map((r) => bare(r.remote))), STRANGER].sort();
    const origins = [...new Set(mine.flatMap((r) => storedOriginId(r.originId) ?? []))].sort();
    for (const remote of remotes) {
      for (const originId of origins) {
        for (const direction of ['I', 'O'] as const) {
          const ids = mine.filter((r) => bare(r.remote) === remote && r.direction === direction && storedOriginId(r.originId) === originId).map((r) => r.id);
          lookups.push({ owner, remote, originId, direction, expected: newest(ids) });
        }
      }
    }
  }
  return lookups;
}

/** Per owner, in id order: what a client asking without groupchat messages must get (the one-to-one messages that are no groupchat copies). */
export function withoutGroupchat(archive: UpgradeArchive): Map<string, string[]> {
  return new Map(OWNERS.map((owner) => [owner, archive.pm.filter((r) => r.owner === owner && r.isGroupchat !== true).map((r) => r.id)]));
}

/** A full JID as mam_jid_mini stores it in `from_jid`, relative to the archive's owner. */
export function minifiedFullJid(owner: BareJid, jid: string): string {
  const slash = jid.indexOf('/');
  const resource = slash < 0 ? '' : jid.slice(slash + 1);
  const b = bareJid(jid);
  if (resource === '') return minifiedBareJid(owner, b);
  if (b.server !== owner.server) return `${b.server}@${b.user}/${resource}`;
  return b.user === owner.user ? `/${resource}` : `${b.user}/${resource}`;
}

export const remoteResource = (jid: string): string => (jid.includes('/') ? jid.slice(jid.indexOf('/') + 1) : '');
