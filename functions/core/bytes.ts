/** Small helpers over Uint8Array and async iterables (Web-standard types only). */

export function concatBytes(chunks: readonly Uint8Array[], total?: number): Uint8Array {
  if (chunks.length === 0) return new Uint8Array(0);
  if (chunks.length === 1) return chunks[0]!;
  const size = total ?? chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export async function collect(source: AsyncIterable<Uint8Array>, maxBytes = Number.MAX_SAFE_INTEGER): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    if (total > maxBytes) throw Object.assign(new Error('body too large'), { code: 'PAYLOAD_TOO_LARGE' });
    chunks.push(chunk);
  }
  return concatBytes(chunks, total);
}

export async function drain(source: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const _ of source) {
    // discard
  }
}

export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Adapt a Web ReadableStream to an async iterable (Node 22 streams are iterable already; this keeps types honest). */
export function iterate(stream: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  if (Symbol.asyncIterator in stream) return stream as AsyncIterable<Uint8Array>;
  const s = stream as ReadableStream<Uint8Array>;
  return {
    async *[Symbol.asyncIterator]() {
      const reader = s.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          yield value;
        }
      } finally {
        reader.releaseLock();
      }
    },
  };
}

/**
 * A ReadableStream that pulls from an async iterable. High-water mark 0: nothing
 * is requested from the source until the consumer reads (back-pressure), and
 * cancelling the stream closes the source. `source` may be a thunk so that
 * even creating the iterator waits for the first read.
 */
export function toReadableStream(source: AsyncIterable<Uint8Array> | (() => AsyncIterator<Uint8Array>)): ReadableStream<Uint8Array> {
  let it: AsyncIterator<Uint8Array> | undefined;
  const iterator = () => (it ??= typeof source === 'function' ? source() : source[Symbol.asyncIterator]());
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await iterator().next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel() {
        await it?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Zero the 128-byte preamble of a Part 10 stream (PS3.10 §7.1): it may carry non-DICOM content (e.g. a TIFF or executable polyglot). */
export async function* zeroPreamble(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    if (seen >= 128) {
      yield chunk;
      continue;
    }
    // Zeros for the preamble bytes in this chunk, then the rest as it is: the chunk may be the
    // whole object (a stored slice read at once), and it is not ours to change or to copy.
    const n = Math.min(128 - seen, chunk.byteLength);
    seen += chunk.byteLength;
    yield new Uint8Array(n);
    if (chunk.byteLength > n) yield chunk.subarray(n);
  }
}

/**
 * Reverse the bytes of every `width`-byte word: big ↔ little endian for values
 * swapped per word (PS3.5 §7.3: OW per 2 bytes, OL/OF per 4, OD/FD per 8). A
 * trailing partial word (never in valid data) is kept as it is; width < 2
 * changes nothing.
 */
export function swapBytesPerWord(bytes: Uint8Array, width: number): Uint8Array {
  if (width < 2) return bytes;
  const out = new Uint8Array(bytes.byteLength);
  const whole = bytes.byteLength - (bytes.byteLength % width);
  for (let i = 0; i < whole; i += width) for (let k = 0; k < width; k++) out[i + k] = bytes[i + width - 1 - k]!;
  out.set(bytes.subarray(whole), whole);
  return out;
}

export function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

// CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320): ZIP entries and PNG chunks.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32 of what came before (`crc`, 0 to start) followed by `bytes`. */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  let c = crc ^ 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
