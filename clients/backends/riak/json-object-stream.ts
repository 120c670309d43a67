/**
 * Riak's streamed listings (`?keys=stream`, `?buckets=stream`) are a sequence of JSON objects
 * written back to back, one per HTTP chunk (riak_kv_wm_keylist:stream_keys/1). Chunk boundaries
 * are not message boundaries once proxies and sockets have merged or split them, so objects are
 * cut out by scanning braces outside strings. Only one object is held at a time.
 */

/** Largest single object accepted: a chunk holds one vnode's batch of keys, far below this. */
const MAX_OBJECT_CHARS = 64 * 1024 * 1024;

export async function* jsonObjects(chunks: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<unknown> {
  const decoder = new TextDecoder('utf-8');
  let buffer = '';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = -1;
  let scanned = 0;
  for await (const chunk of chunks) {
    buffer += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    for (let i = scanned; i < buffer.length; i++) {
      const c = buffer[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{') {
        if (depth++ === 0) start = i;
      } else if (c === '}') {
        if (--depth === 0) {
          yield JSON.parse(buffer.slice(start, i + 1)) as unknown;
          buffer = buffer.slice(i + 1);
          i = -1;
          start = -1;
        } else if (depth < 0) throw new Error('streamed listing: unbalanced "}"');
      } else if (depth === 0 && !/\s/.test(c)) {
        throw new Error(`streamed listing: unexpected ${JSON.stringify(c)} between JSON objects`);
      }
    }
    scanned = buffer.length;
    if (depth === 0 && !inString) {
      buffer = '';
      scanned = 0;
    }
    if (buffer.length > MAX_OBJECT_CHARS) throw new Error(`streamed listing: one object exceeds ${MAX_OBJECT_CHARS} characters`);
  }
  if (depth !== 0 || inString) throw new Error('streamed listing: the answer ended inside a JSON object');
}
