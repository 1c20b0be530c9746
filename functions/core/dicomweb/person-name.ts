/**
 * Normal form of text for case- and accent-insensitive matching (used by the
 * QIDO fuzzy matcher and by index adapters to build name-prefix keys, so the
 * two can never disagree). PS3.18 §8.3.4.6 leaves fuzzy matching to the
 * origin server; ours ignores case, accents and PN component order.
 */
export function normalizeForMatch(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toUpperCase()
    .trim();
}

/** Family name (first component of the first PN component group), normalized. */
export function normalizedFamilyName(personName: string | undefined): string {
  if (!personName) return '';
  const alphabetic = personName.split('=')[0] ?? '';
  return normalizeForMatch(alphabetic.split('^')[0] ?? '');
}
