/**
 * A batch as the workers read it (an encoded ExtractSenderJidRequest) and their answer (an encoded
 * ExtractSenderJidResponse) back into results: the one encoding both decoding paths use, since
 * the in-process pool and a remote sidecar run the same worker on the same bytes.
 */
import {
  ErrorCode,
  ExtractMessageFieldsResponse,
  ExtractSenderJidRequest,
  ExtractSenderJidResponse,
  PayloadFormat as WireFormat,
  type Failure as WireFailure,
} from '../../services/sidecar/gen/mongooseim/mam/v1/sender_jid.js';
import type { AnswerKind, ErrorCodeName, ExtractItem, ExtractResult, FieldAnswer, FieldsResult, PayloadFormat } from './types.js';

const WIRE_FORMAT: Record<PayloadFormat, WireFormat> = {
  eterm: WireFormat.PAYLOAD_FORMAT_ETERM,
  xml: WireFormat.PAYLOAD_FORMAT_XML,
  auto: WireFormat.PAYLOAD_FORMAT_AUTO,
};

const CODE_NAME: Partial<Record<ErrorCode, ErrorCodeName>> = {
  [ErrorCode.ERROR_CODE_MALFORMED]: 'malformed',
  [ErrorCode.ERROR_CODE_NOT_GROUPCHAT]: 'not_groupchat',
  [ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE]: 'payload_too_large',
  [ErrorCode.ERROR_CODE_JID_WITHOUT_LOCAL_PART]: 'jid_without_local_part',
  [ErrorCode.ERROR_CODE_JID_WITHOUT_DOMAIN]: 'jid_without_domain',
};

/**
 * Encodes a batch once (a retry resends these bytes). The buffer owns its memory, exactly sized
 * (the protobuf writer's finish() copies into a fresh array), so it can be transferred to a worker.
 */
export function encodeBatch(items: readonly ExtractItem[], format?: PayloadFormat): Buffer {
  const bytes = ExtractSenderJidRequest.encode({
    format: format === undefined ? WireFormat.PAYLOAD_FORMAT_UNSPECIFIED : WIRE_FORMAT[format],
    items: items.map((item) => ({
      key: item.key,
      payload: item.payload,
      format: item.format === undefined ? WireFormat.PAYLOAD_FORMAT_UNSPECIFIED : WIRE_FORMAT[item.format],
    })),
  }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Decodes an answer and checks it answers this batch: one result per item, keys in order. */
export function decodeAnswers(items: readonly { key: string }[], bytes: Uint8Array): ExtractResult[] {
  const { results } = ExtractSenderJidResponse.decode(bytes);
  if (results.length !== items.length) {
    throw new Error(`sidecar answered ${results.length} results for a batch of ${items.length} items`);
  }
  return results.map((result, i) => {
    const key = items[i].key;
    if (result.key !== key) throw new Error(`sidecar answered key ${JSON.stringify(result.key)} at ${i}, expected ${JSON.stringify(key)}`);
    if (result.jid !== undefined) {
      return { key, ok: true, bareJid: result.jid.bareJid, user: result.jid.user, server: result.jid.server };
    }
    if (result.error !== undefined) {
      const code = CODE_NAME[result.error.code];
      if (code === undefined) {
        // A code newer than this client: still a failure for this item, never a guessed JID.
        return { key, ok: false, code: 'malformed', detail: `unknown error code ${result.error.code}: ${result.error.detail}` };
      }
      return { key, ok: false, code, detail: result.error.detail };
    }
    throw new Error(`sidecar answered neither a jid nor an error for key ${JSON.stringify(key)}`);
  });
}

/**
 * How one kind of answer is read back: both RPCs take the same request bytes (ExtractMessageFields'
 * request has ExtractSenderJid's fields and numbers), so the cutting, limits, retries and workers
 * are shared, and only the answer's decoding differs.
 */
export interface AnswerCodec<R extends { readonly key: string }> {
  readonly kind: AnswerKind;
  /** The answer to a batch, checked to answer it (one result per item, keys in order). */
  decode(items: readonly { key: string }[], bytes: Uint8Array): R[];
  /** The answer for an item no request can hold (request-sizing.ts). */
  tooLarge(key: string, detail: string): R;
}

export const SENDER_ANSWERS: AnswerCodec<ExtractResult> = {
  kind: 'sender',
  decode: decodeAnswers,
  tooLarge: (key, detail) => ({ key, ok: false, code: 'payload_too_large', detail }),
};

export const FIELD_ANSWERS: AnswerCodec<FieldsResult> = {
  kind: 'fields',
  decode: decodeFieldAnswers,
  tooLarge(key, detail) {
    const failure = { ok: false, code: 'payload_too_large', detail } as const;
    return { key, originId: failure, isGroupchat: failure };
  },
};

function fieldFailure(error: WireFailure): { readonly ok: false; readonly code: 'malformed' | 'payload_too_large'; readonly detail: string } {
  if (error.code === ErrorCode.ERROR_CODE_PAYLOAD_TOO_LARGE) return { ok: false, code: 'payload_too_large', detail: error.detail };
  // MALFORMED, or a code newer than this client: a failure for this field, never a guessed value.
  const known = error.code === ErrorCode.ERROR_CODE_MALFORMED;
  return { ok: false, code: 'malformed', detail: known ? error.detail : `unknown error code ${error.code}: ${error.detail}` };
}

/** Decodes an ExtractMessageFields answer and checks it answers this batch: one result per item, keys in order. */
export function decodeFieldAnswers(items: readonly { key: string }[], bytes: Uint8Array): FieldsResult[] {
  const { results } = ExtractMessageFieldsResponse.decode(bytes);
  if (results.length !== items.length) {
    throw new Error(`sidecar answered ${results.length} results for a batch of ${items.length} items`);
  }
  return results.map((result, i) => {
    const key = items[i].key;
    if (result.key !== key) throw new Error(`sidecar answered key ${JSON.stringify(result.key)} at ${i}, expected ${JSON.stringify(key)}`);
    const o = result.originId;
    let originId: FieldAnswer<string | null>;
    if (o?.originId !== undefined) originId = { ok: true, value: o.originId };
    else if (o?.none !== undefined) originId = { ok: true, value: null };
    else if (o?.error !== undefined) originId = fieldFailure(o.error);
    else throw new Error(`sidecar answered no origin_id outcome for key ${JSON.stringify(key)}`);
    const g = result.isGroupchat;
    let isGroupchat: FieldAnswer<boolean>;
    if (g?.isGroupchat !== undefined) isGroupchat = { ok: true, value: g.isGroupchat };
    else if (g?.error !== undefined) isGroupchat = fieldFailure(g.error);
    else throw new Error(`sidecar answered no is_groupchat outcome for key ${JSON.stringify(key)}`);
    return { key, originId, isGroupchat };
  });
}
