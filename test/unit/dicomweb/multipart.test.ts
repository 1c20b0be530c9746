import {
  collectBytes,
  collectMultipart,
  encodeMultipart,
  indexOfBytes,
  isValidBoundary,
  newBoundary,
  parseMultipartRelated,
  readMultipart,
  writeMultipart,
  writeMultipartBytes,
  type MultipartLimits,
  type MultipartOutPart,
} from '../../../functions/core/dicomweb/multipart';

const enc = new TextEncoder();
const dec = new TextDecoder();
const B = 'b0undary-42';
const LIMITS: MultipartLimits = { maxParts: 100, maxHeaderBytes: 4096, maxBodyBytes: 10 * 1024 * 1024 };

function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

/** Split bytes into chunks of the given sizes (cycled). */
async function* chunked(data: Uint8Array, sizes: number[] = [data.length || 1]): AsyncGenerator<Uint8Array> {
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const n = sizes[i++ % sizes.length]!;
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function parse(body: string | Uint8Array, sizes?: number[], limits: MultipartLimits = LIMITS, boundary = B) {
  const data = typeof body === 'string' ? bytes(body) : body;
  const parts = await collectMultipart(chunked(data, sizes), boundary, limits);
  return parts.map((p) => ({ headers: Object.fromEntries(p.headers), body: dec.decode(p.body) }));
}

async function errorOf(body: string | Uint8Array, limits: MultipartLimits = LIMITS, sizes?: number[]): Promise<{ code?: string; message: string }> {
  try {
    await parse(body, sizes, limits);
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

const TWO_PARTS =
  `--${B}\r\nContent-Type: application/dicom\r\nContent-Location: /a\r\n\r\nfirst body\r\n` +
  `--${B}\r\ncontent-type: application/dicom+json\r\n\r\n{"x":1}\r\n--${B}--\r\n`;

describe('readMultipart (RFC 2046 §5.1.1)', () => {
  it('reads parts, headers (lower-cased names) and bodies', async () => {
    const parts = [];
    for await (const p of readMultipart(chunked(bytes(TWO_PARTS)), B, LIMITS)) {
      parts.push({ ct: p.contentType, loc: p.contentLocation, body: dec.decode(await collectBytes(p.body)) });
    }
    expect(parts).toEqual([
      { ct: 'application/dicom', loc: '/a', body: 'first body' },
      { ct: 'application/dicom+json', loc: undefined, body: '{"x":1}' },
    ]);
  });

  it('gives the same result whatever the chunking (down to 1 byte)', async () => {
    const expected = await parse(TWO_PARTS);
    for (const sizes of [[1], [2], [3], [5, 1, 7], [13], [B.length + 3], [B.length + 4], [B.length + 5], [64]]) {
      expect(await parse(TWO_PARTS, sizes)).toEqual(expected);
    }
  });

  it('accepts a ReadableStream', async () => {
    const data = bytes(TWO_PARTS);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(data.subarray(0, 10));
        c.enqueue(data.subarray(10));
        c.close();
      },
    });
    const parts = await collectMultipart(stream, B);
    expect(parts.map((p) => dec.decode(p.body))).toEqual(['first body', '{"x":1}']);
  });

  it('reads a Web Request body (chunks from another realm under jest)', async () => {
    const request = new Request('http://localhost/studies', { method: 'POST', body: bytes(TWO_PARTS) as Uint8Array<ArrayBuffer> });
    const parts = await collectMultipart(request.body!, B);
    expect(parts.map((p) => dec.decode(p.body))).toEqual(['first body', '{"x":1}']);
  });

  describe('tolerates', () => {
    it('a leading CRLF before the first boundary', async () => {
      expect(await parse(`\r\n${TWO_PARTS}`)).toEqual(await parse(TWO_PARTS));
    });
    it('a preamble', async () => {
      expect(await parse(`This is a preamble.\r\nIgnore it --${B} here.\r\n${TWO_PARTS}`, [4])).toEqual(await parse(TWO_PARTS));
    });
    it('LWSP after boundary lines', async () => {
      const body = `--${B} \t \r\nContent-Type: a/b\r\n\r\nx\r\n--${B}\t\r\n\r\ny\r\n--${B}-- \r\n`;
      expect((await parse(body, [3])).map((p) => p.body)).toEqual(['x', 'y']);
    });
    it('a missing CRLF after the close delimiter', async () => {
      expect(await parse(TWO_PARTS.slice(0, -2))).toEqual(await parse(TWO_PARTS));
    });
    it('an epilogue (not even read)', async () => {
      let pulled = 0;
      async function* src() {
        pulled++;
        yield bytes(`${TWO_PARTS}epilogue`);
        pulled++;
        yield bytes('more epilogue');
        throw new Error('should not be read');
      }
      const parts = await collectMultipart(src(), B);
      expect(parts).toHaveLength(2);
      expect(pulled).toBe(1);
    });
  });

  it('handles parts without headers and empty bodies', async () => {
    const body = `--${B}\r\n\r\nno headers\r\n--${B}\r\nContent-Type: a/b\r\n\r\n\r\n--${B}\r\n\r\n\r\n--${B}--`;
    expect(await parse(body, [1])).toEqual([
      { headers: {}, body: 'no headers' },
      { headers: { 'content-type': 'a/b' }, body: '' },
      { headers: {}, body: '' },
    ]);
  });

  it('keeps CRLFs and boundary look-alikes that are not delimiters', async () => {
    const content = `line1\r\n\r\n--${B.slice(0, -1)}\r\n-${B}\r\nx--${B}\r\n\r\r\n\r\n-`;
    const body = `--${B}\r\nContent-Type: text/plain\r\n\r\n${content}\r\n--${B}--\r\n`;
    for (const sizes of [[1], [2], [7], [1000]]) {
      expect((await parse(body, sizes))[0]!.body).toBe(content);
    }
  });

  it('unfolds folded headers and joins repeated ones', async () => {
    const body = `--${B}\r\nContent-Type: multipart/related;\r\n type="application/dicom"\r\nX-A: 1\r\nx-a: 2\r\n\r\nz\r\n--${B}--`;
    const [p] = await parse(body);
    expect(p!.headers).toEqual({ 'content-type': 'multipart/related; type="application/dicom"', 'x-a': '1, 2' });
  });

  it('preserves binary bodies exactly, across any chunking', async () => {
    const payload = new Uint8Array(5000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7919) % 256;
    payload.set(bytes(`\r\n--${B.slice(0, 5)}`), 100); // a delimiter prefix in the data
    payload.set(bytes('\r\n'), payload.length - 2); // data ending in CRLF
    const msg = await writeMultipartBytes([{ contentType: 'application/octet-stream', body: payload }, { contentType: 'a/b', body: payload }], B);
    for (const sizes of [[1], [3, 11], [4096], [B.length + 4]]) {
      const parts = await collectMultipart(chunked(msg, sizes), B);
      expect(parts).toHaveLength(2);
      expect(parts[0]!.body).toEqual(payload);
      expect(parts[1]!.body).toEqual(payload);
    }
  });

  describe('is strict (MULTIPART_MALFORMED)', () => {
    it.each([
      ['no opening boundary', 'just some text\r\nwithout a boundary'],
      ['empty body', ''],
      ['a boundary not at a line start', `xx--${B}\r\n\r\nbody\r\n--${B}--`],
      ['truncated inside a part', `--${B}\r\nContent-Type: a/b\r\n\r\nsome data`],
      ['truncated after a part (no close delimiter)', `--${B}\r\nContent-Type: a/b\r\n\r\nsome data\r\n`],
      ['truncated right after a delimiter', `--${B}\r\nContent-Type: a/b\r\n\r\nsome data\r\n--${B}`],
      ['truncated inside headers', `--${B}\r\nContent-Type: a/b\r\n`],
      ['truncated inside the first boundary line', `--${B}  `],
      ['a header block without blank line', `--${B}\r\nContent-Type: a/b\r\nbinary data here\r\n--${B}--`],
      ['a header block ended by the next boundary', `--${B}\r\nContent-Type: a/b\r\n--${B}--\r\n`],
      ['an invalid header name', `--${B}\r\nBad Header: x\r\n\r\nz\r\n--${B}--`],
      ['a header block starting with a continuation', `--${B}\r\n x: y\r\n\r\nz\r\n--${B}--`],
      ['two Content-Type headers', `--${B}\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\nz\r\n--${B}--`],
      ['garbage after a boundary', `--${B}garbage\r\n\r\nz\r\n--${B}--`],
      ['a lone CR after a boundary', `--${B}\rx\r\n\r\nz\r\n--${B}--`],
      ['no parts at all', `--${B}--\r\n`],
    ])('%s', async (_what, body) => {
      const e = await errorOf(body);
      expect(e.code).toBe('MULTIPART_MALFORMED');
      expect(e.message.length).toBeGreaterThan(10);
    });

    it('throws from the part body when the message is truncated mid-part', async () => {
      const gen = readMultipart(chunked(bytes(`--${B}\r\n\r\npartial`)), B, LIMITS);
      const first = await gen.next();
      expect(first.done).toBe(false);
      if (first.done) return;
      await expect(collectBytes(first.value.body)).rejects.toMatchObject({ code: 'MULTIPART_MALFORMED' });
    });

    it.each([[''], ['a'.repeat(71)], ['ends with space '], ['bad"quote'], ['semi;colon'], ['tab\t']])('rejects boundary %j', async (b) => {
      expect(isValidBoundary(b)).toBe(false);
      const gen = readMultipart(chunked(bytes(TWO_PARTS)), b, LIMITS);
      await expect(gen.next()).rejects.toMatchObject({ code: 'MULTIPART_MALFORMED' });
    });

    it('accepts boundaries of the whole RFC 2046 set', () => {
      for (const b of ['a', 'a'.repeat(70), "0aZ'()+_,-./:=?", 'with space inside', '**'.replace(/\*/g, '_')]) expect(isValidBoundary(b)).toBe(true);
    });
  });

  describe('enforces limits (MULTIPART_LIMIT)', () => {
    it('maxParts', async () => {
      const body = `--${B}\r\n\r\n1\r\n--${B}\r\n\r\n2\r\n--${B}\r\n\r\n3\r\n--${B}--`;
      expect((await parse(body, undefined, { ...LIMITS, maxParts: 3 })).length).toBe(3);
      expect((await errorOf(body, { ...LIMITS, maxParts: 2 })).code).toBe('MULTIPART_LIMIT');
    });
    it('maxHeaderBytes (a long header line, even when split across chunks)', async () => {
      const body = `--${B}\r\nX-Long: ${'a'.repeat(200)}\r\n\r\nz\r\n--${B}--`;
      expect((await parse(body, undefined, { ...LIMITS, maxHeaderBytes: 300 })).length).toBe(1);
      for (const sizes of [[1], [50], [10000]]) expect((await errorOf(body, { ...LIMITS, maxHeaderBytes: 100 }, sizes)).code).toBe('MULTIPART_LIMIT');
    });
    it('maxHeaderBytes (binary with no CRLF where headers should be)', async () => {
      const body = `--${B}\r\n${'x'.repeat(10000)}`;
      expect((await errorOf(body, { ...LIMITS, maxHeaderBytes: 1024 }, [512])).code).toBe('MULTIPART_LIMIT');
    });
    it('maxBodyBytes', async () => {
      const size = bytes(TWO_PARTS).length;
      expect((await parse(TWO_PARTS, [7], { ...LIMITS, maxBodyBytes: size })).length).toBe(2);
      const e = await errorOf(TWO_PARTS, { ...LIMITS, maxBodyBytes: size - 10 }, [7]);
      expect(e.code).toBe('MULTIPART_LIMIT');
    });
  });

  describe('streams lazily', () => {
    it('does not read the source beyond what the consumer asked for', async () => {
      let pulled = 0;
      async function* src() {
        for (const s of [`--${B}\r\n\r\n`, 'aaaa', 'bbbb', `\r\n--${B}\r\n\r\n`, 'cccc', `\r\n--${B}--`]) {
          pulled++;
          yield bytes(s);
        }
      }
      const gen = readMultipart(src(), B, LIMITS);
      const first = await gen.next();
      expect(pulled).toBe(1);
      if (first.done) throw new Error('no part');
      const it = first.value.body[Symbol.asyncIterator]();
      expect(dec.decode((await it.next()).value)).toBe('aaaa');
      expect(pulled).toBe(2);
      await it.return?.(undefined); // leave the rest of the body unread
      const second = await gen.next(); // drains 'bbbb' without handing it out
      if (second.done) throw new Error('no part');
      expect(dec.decode(await collectBytes(second.value.body))).toBe('cccc');
      expect((await gen.next()).done).toBe(true);
    });

    it('drains unread bodies and refuses reading a body twice or late', async () => {
      const gen = readMultipart(chunked(bytes(TWO_PARTS), [3]), B, LIMITS);
      const first = await gen.next();
      if (first.done) throw new Error('no part');
      const second = await gen.next(); // first body never read
      if (second.done) throw new Error('no part');
      expect(() => first.value.body[Symbol.asyncIterator]()).toThrow(/only once/);
      expect(dec.decode(await collectBytes(second.value.body))).toBe('{"x":1}');
      expect(() => second.value.body[Symbol.asyncIterator]()).toThrow(/only once/);
    });

    it('releases the source when the consumer stops early', async () => {
      let closed = false;
      async function* src() {
        try {
          yield bytes(TWO_PARTS.slice(0, 60));
          yield bytes(TWO_PARTS.slice(60));
        } finally {
          closed = true;
        }
      }
      for await (const _p of readMultipart(src(), B, LIMITS)) break;
      expect(closed).toBe(true);
    });

    it('streams a 64 MiB part with bounded pieces and a fast boundary search', async () => {
      const CHUNK = 64 * 1024;
      const COUNT = 1024;
      const block = new Uint8Array(CHUNK);
      for (let i = 0; i < CHUNK; i++) block[i] = (i * 31 + 7) % 256; // includes CR and LF bytes
      async function* src() {
        yield bytes(`--${B}\r\nContent-Type: application/dicom\r\n\r\n`);
        for (let i = 0; i < COUNT; i++) yield block;
        yield bytes(`\r\n--${B}--\r\n`);
      }
      const started = Date.now();
      let total = 0;
      let largest = 0;
      let parts = 0;
      for await (const part of readMultipart(src(), B, { ...LIMITS, maxBodyBytes: 1 << 30 })) {
        parts++;
        for await (const c of part.body) {
          total += c.length;
          largest = Math.max(largest, c.length);
        }
      }
      expect(parts).toBe(1);
      expect(total).toBe(CHUNK * COUNT);
      expect(largest).toBeLessThanOrEqual(CHUNK + B.length + 4);
      expect(Date.now() - started).toBeLessThan(5000);
    });
  });
});

describe('indexOfBytes', () => {
  it('finds needles at the edges and not beyond', () => {
    const hay = bytes('abcabcd');
    expect(indexOfBytes(hay, bytes('abcd'))).toBe(3);
    expect(indexOfBytes(hay, bytes('abc'), 1)).toBe(3);
    expect(indexOfBytes(hay, bytes('cde'))).toBe(-1);
    expect(indexOfBytes(hay, bytes('d'))).toBe(6);
    expect(indexOfBytes(hay, bytes('abcabcdx'))).toBe(-1);
  });
});

describe('parseMultipartRelated (PS3.18 §8.6.1.2.1)', () => {
  it.each([
    ['multipart/related; type="application/dicom"; boundary=abc', 'abc', 'application/dicom'],
    ['multipart/related; boundary="abc def"; type=application/dicom', 'abc def', 'application/dicom'],
    ['Multipart/Related;Boundary=abc;TYPE="Application/DICOM"', 'abc', 'application/dicom'],
    ['multipart/related; type="application/dicom; transfer-syntax=1.2.840.10008.1.2.1"; boundary=x', 'x', 'application/dicom'],
    ['multipart/related; boundary=x', 'x', undefined],
    ['multipart/related; type="application/dicom"; start="<root@x>"; boundary="=_a:b/c"', '=_a:b/c', 'application/dicom'],
  ])('%s', (ct, boundary, type) => {
    const r = parseMultipartRelated(ct);
    expect(r.boundary).toBe(boundary);
    expect(r.type).toBe(type);
  });

  it('reads start', () => {
    expect(parseMultipartRelated('multipart/related; type="application/dicom"; start="<root@x>"; boundary=b').start).toBe('<root@x>');
  });

  it.each([
    ['multipart/related; type="application/dicom"', 'MULTIPART_MALFORMED'],
    ['multipart/related; boundary=""', 'MULTIPART_MALFORMED'],
    ['multipart/related; boundary="ends with space "', 'MULTIPART_MALFORMED'],
    [`multipart/related; boundary=${'a'.repeat(71)}`, 'MULTIPART_MALFORMED'],
    ['multipart/related; boundary=x; type="not a type"', 'MULTIPART_MALFORMED'],
    ['multipart/form-data; boundary=x', 'UNSUPPORTED_MEDIA_TYPE'],
    ['application/dicom', 'UNSUPPORTED_MEDIA_TYPE'],
    ['garbage', 'INVALID_MEDIA_TYPE'],
  ])('rejects %s with %s', (ct, code) => {
    expect(() => parseMultipartRelated(ct)).toThrow(expect.objectContaining({ code }));
  });
});

describe('writeMultipart', () => {
  async function* gen(parts: MultipartOutPart[], log: string[]) {
    for (const [i, p] of parts.entries()) {
      log.push(`part ${i}`);
      yield p;
    }
  }

  it('encodes with CRLF, a leading boundary line and a close delimiter', async () => {
    const bytesOut = await writeMultipartBytes(
      [
        { contentType: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.1', headers: { 'Content-Location': 'http://x/a' }, body: bytes('AAA') },
        { contentType: 'application/dicom', body: (async function* () { yield bytes('B'); yield new Uint8Array(0); yield bytes('B'); })() },
      ],
      'bnd',
    );
    expect(dec.decode(bytesOut)).toBe(
      '--bnd\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1\r\nContent-Location: http://x/a\r\n\r\nAAA\r\n' +
        '--bnd\r\nContent-Type: application/dicom\r\n\r\nBB\r\n--bnd--\r\n',
    );
  });

  it('encodes an empty list as the close delimiter alone', async () => {
    expect(dec.decode(await writeMultipartBytes([], 'bnd'))).toBe('--bnd--\r\n');
  });

  it('gives a PS3.18 Content-Type with a random boundary', () => {
    const w = writeMultipart([]);
    expect(w.boundary).toMatch(/^[0-9a-f-]{36}$/);
    expect(isValidBoundary(w.boundary)).toBe(true);
    expect(w.contentType('application/dicom')).toBe(`multipart/related; type="application/dicom"; boundary=${w.boundary}`);
    expect(w.contentType('application/octet-stream', { 'transfer-syntax': '1.2.840.10008.1.2.1', boundary: 'ignored' })).toBe(
      `multipart/related; type="application/octet-stream"; boundary=${w.boundary}; transfer-syntax=1.2.840.10008.1.2.1`,
    );
    expect(parseMultipartRelated(w.contentType('application/dicom'))).toMatchObject({ boundary: w.boundary, type: 'application/dicom' });
    expect(newBoundary()).not.toBe(newBoundary());
  });

  it('round-trips through readMultipart', async () => {
    const w = writeMultipart([
      { contentType: 'application/dicom', headers: { 'Content-Location': '/x/1' }, body: bytes('one') },
      { contentType: 'application/dicom', body: bytes('') },
      { contentType: 'image/jpeg', body: bytes(`\r\n--${B}\r\n`) },
    ]);
    const parts = await collectMultipart(w.stream, parseMultipartRelated(w.contentType('application/dicom')).boundary);
    expect(parts.map((p) => [p.contentType, p.contentLocation, dec.decode(p.body)])).toEqual([
      ['application/dicom', '/x/1', 'one'],
      ['application/dicom', undefined, ''],
      ['image/jpeg', undefined, `\r\n--${B}\r\n`],
    ]);
  });

  it('is pull-based: the next part is requested only when the consumer reads', async () => {
    const log: string[] = [];
    const w = writeMultipart(gen([{ contentType: 'a/b', body: bytes('1') }, { contentType: 'a/b', body: bytes('2') }], log));
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual([]);
    const reader = w.stream.getReader();
    await reader.read(); // head of part 0
    expect(log).toEqual(['part 0']);
    await reader.read(); // body of part 0
    expect(log).toEqual(['part 0']);
    await reader.read(); // head of part 1
    expect(log).toEqual(['part 0', 'part 1']);
    reader.releaseLock();
  });

  it('closes the part source when the consumer cancels', async () => {
    let closed = false;
    async function* parts() {
      try {
        yield { contentType: 'a/b', body: bytes('1') };
        yield { contentType: 'a/b', body: bytes('2') };
      } finally {
        closed = true;
      }
    }
    const w = writeMultipart(parts());
    const reader = w.stream.getReader();
    await reader.read();
    await reader.cancel();
    expect(closed).toBe(true);
  });

  it('errors the stream when a part body fails', async () => {
    const w = writeMultipart([{ contentType: 'a/b', body: (async function* () { yield bytes('x'); throw new Error('boom'); })() }]);
    await expect(collectBytes(w.stream)).rejects.toThrow('boom');
  });

  it('refuses header injection', async () => {
    await expect(writeMultipartBytes([{ contentType: 'a/b\r\nX-Evil: 1', body: bytes('') }])).rejects.toThrow(TypeError);
    await expect(writeMultipartBytes([{ contentType: 'a/b', headers: { 'Content-Location': 'x\r\n\r\nbody' }, body: bytes('') }])).rejects.toThrow(TypeError);
    await expect(writeMultipartBytes([{ contentType: 'a/b', headers: { 'Bad Name': 'x' }, body: bytes('') }])).rejects.toThrow(TypeError);
  });

  it('keeps each part header block well within the 1000 bytes dicomweb-client scans', async () => {
    const location = `https://dicomweb.example.org/dicom-web/studies/${'1.2.3.'.repeat(10)}4/series/${'1.2.3.'.repeat(10)}5/instances/${'1.2.3.'.repeat(10)}6`;
    const out = dec.decode(
      await collectBytes(encodeMultipart([{ contentType: 'application/dicom; transfer-syntax=1.2.840.10008.1.2.4.50', headers: { 'Content-Location': location }, body: bytes('x') }], newBoundary())),
    );
    expect(out.startsWith('--')).toBe(true); // the boundary is read from the first line of the body
    expect(out.indexOf('\r\n\r\n')).toBeLessThan(1000);
  });
});
