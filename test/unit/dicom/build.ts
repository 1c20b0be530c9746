/**
 * A tiny hand-rolled encoder for crafting (also deliberately broken) Part 10 inputs in tests.
 * Independent of the production writer on purpose: tests of the reader must not share its bugs.
 */
export const TS = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  explicitBE: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
} as const;

const LONG = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
export const UNDEFINED = 0xffffffff;

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function ascii(s: string, pad = ' '): Uint8Array {
  const b = Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  if (b.length % 2) b.push(pad.charCodeAt(0));
  return Uint8Array.from(b);
}

export function u16(...v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 2);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint16(i * 2, x, true));
  return b;
}

export function u32(...v: number[]): Uint8Array {
  const b = new Uint8Array(v.length * 4);
  const dv = new DataView(b.buffer);
  v.forEach((x, i) => dv.setUint32(i * 4, x, true));
  return b;
}

/** Explicit VR LE element. `length` overrides the declared length (for lying headers). */
export function el(tag: number, vr: string, value: Uint8Array | string = new Uint8Array(0), length?: number): Uint8Array {
  const v = typeof value === 'string' ? ascii(value, vr === 'UI' ? '\0' : ' ') : value;
  const len = length ?? v.length;
  const long = LONG.has(vr) || vr.length !== 2 || !/^[A-Z]{2}$/.test(vr);
  const h = new Uint8Array(long ? 12 : 8);
  const dv = new DataView(h.buffer);
  dv.setUint16(0, tag >>> 16, true);
  dv.setUint16(2, tag & 0xffff, true);
  h[4] = vr.charCodeAt(0);
  h[5] = vr.charCodeAt(1);
  if (long) dv.setUint32(8, len >>> 0, true);
  else dv.setUint16(6, len, true);
  return concat(h, v);
}

/** Implicit VR LE element. */
export function elImplicit(tag: number, value: Uint8Array | string, length?: number): Uint8Array {
  const v = typeof value === 'string' ? ascii(value) : value;
  return concat(u16(tag >>> 16, tag & 0xffff), u32(length ?? v.length), v);
}

export function item(content: Uint8Array, undefinedLength = false): Uint8Array {
  if (undefinedLength) return concat(u16(0xfffe, 0xe000), u32(UNDEFINED), content, u16(0xfffe, 0xe00d), u32(0));
  return concat(u16(0xfffe, 0xe000), u32(content.length), content);
}

export function seq(tag: number, items: Uint8Array[], undefinedLength = true, vr = 'SQ'): Uint8Array {
  const body = concat(...items);
  if (undefinedLength) return concat(el(tag, vr, new Uint8Array(0), UNDEFINED), body, u16(0xfffe, 0xe0dd), u32(0));
  return el(tag, vr, body);
}

/** Encapsulated pixel data: BOT (offsets) + fragments + delimiter. */
export function encapsulated(fragments: Uint8Array[], bot: number[] = []): Uint8Array {
  return concat(
    el(0x7fe00010, 'OB', new Uint8Array(0), UNDEFINED),
    item(u32(...bot)),
    ...fragments.map((f) => item(f)),
    u16(0xfffe, 0xe0dd),
    u32(0),
  );
}

/** Preamble + DICM + file meta (explicit LE, with group length) + data set bytes. */
export function part10(dataset: Uint8Array, transferSyntax: string = TS.explicitLE, extraMeta: Uint8Array[] = []): Uint8Array {
  const meta = concat(
    el(0x00020001, 'OB', Uint8Array.from([0, 1])),
    el(0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
    el(0x00020003, 'UI', '1.2.3.4.5.6'),
    el(0x00020010, 'UI', transferSyntax),
    ...extraMeta,
  );
  const preamble = new Uint8Array(132);
  preamble.set([0x44, 0x49, 0x43, 0x4d], 128);
  return concat(preamble, el(0x00020000, 'UL', u32(meta.length)), meta, dataset);
}
