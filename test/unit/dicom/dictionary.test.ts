import { statSync } from 'node:fs';
import * as path from 'node:path';
import { implicitVR, lookupKeyword, lookupTag, lookupTagKey, tagForKeyword } from '../../../functions/core/dicom/dictionary';
import { Tag } from '../../../functions/core/dicom/tags';

describe('dictionary', () => {
  it('looks up tags and keywords both ways', () => {
    expect(lookupTag(0x00100010)).toMatchObject({ tag: '00100010', vr: 'PN', vm: '1', keyword: 'PatientName', retired: false });
    expect(lookupTagKey('0020000D')?.keyword).toBe('StudyInstanceUID');
    expect(lookupTagKey('(0008,0005)')?.vm).toBe('1-n');
    expect(lookupKeyword('SOPInstanceUID')?.tag).toBe('00080018');
    expect(tagForKeyword('PixelData')).toBe('7FE00010');
    expect(lookupTagKey('zz')).toBeUndefined();
  });

  it('agrees with the hand-written Tag table', () => {
    for (const [keyword, key] of Object.entries(Tag)) expect(tagForKeyword(keyword)).toBe(key);
  });

  it('repeating groups 50xx / 60xx (even groups only)', () => {
    expect(lookupTag(0x60003000)?.keyword).toBe('OverlayData');
    expect(lookupTag(0x601e3000)?.keyword).toBe('OverlayData');
    expect(lookupTag(0x60020010)?.keyword).toBe('OverlayRows');
    expect(lookupTag(0x50103000)?.retired).toBe(true);
    expect(lookupTag(0x60013000)).toBeUndefined(); // odd group: private
  });

  it('private tags are unknown; implicit VR rules', () => {
    expect(lookupTag(0x00091001)).toBeUndefined();
    expect(implicitVR(0x00090010)).toBe('LO'); // private creator
    expect(implicitVR(0x00091001)).toBe('UN');
    expect(implicitVR(0x00080000)).toBe('UL'); // group length
    expect(implicitVR(0x7fe00010)).toBe('OW');
    expect(implicitVR(0x00280106)).toBe('US');
    expect(implicitVR(0x00280106, 1)).toBe('SS');
    expect(implicitVR(0x00283006)).toBe('OW');
    expect(implicitVR(0x00100010)).toBe('PN');
    expect(implicitVR(0xfffee000)).toBe('UN');
    expect(implicitVR(0x12340010)).toBe('UN');
  });

  it('the generated data stays small', () => {
    const size = statSync(path.resolve(__dirname, '../../../functions/core/dicom/dictionary-data.ts')).size;
    expect(size).toBeLessThan(600 * 1024);
  });
});
