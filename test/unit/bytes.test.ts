/** functions/core/bytes.ts: zeroPreamble over any chunking, without touching the source's buffers. */
import { concatBytes, zeroPreamble } from '../../functions/core/bytes';

async function collect(chunks: Uint8Array[]): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  for await (const c of zeroPreamble((async function* () { yield* chunks; })())) out.push(c);
  return concatBytes(out);
}

describe('zeroPreamble', () => {
  const object = Uint8Array.from({ length: 400 }, (_, i) => (i % 250) + 1);
  const expected = Uint8Array.from(object, (b, i) => (i < 128 ? 0 : b));

  it.each([[[400]], [[1, 399]], [[50, 50, 300]], [[127, 1, 272]], [[128, 272]], [[200, 200]], [[64, 64, 64, 208]]])('chunks of %j: the first 128 bytes zeroed, the rest as is', async (sizes) => {
    const source = Uint8Array.from(object);
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const n of sizes) chunks.push(source.subarray(at, (at += n)));
    await expect(collect(chunks)).resolves.toEqual(expected);
    expect(source).toEqual(object); // the source's bytes are not changed
  });

  it('an object shorter than the preamble comes back as zeros of its length', async () => {
    await expect(collect([Uint8Array.of(1, 2, 3)])).resolves.toEqual(new Uint8Array(3));
  });
});
