/**
 * Absolute URLs in responses (RetrieveURL, BulkDataURI) must work for the
 * client that asked, also behind a proxy or API Gateway: the origin comes from
 * `Forwarded` (RFC 7239) first, then `X-Forwarded-Proto/Host`, then the request
 * URL itself. Header values are validated before use so a forged header cannot
 * inject markup or another scheme into our responses.
 */
const HOST_PATTERN = /^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

function unquote(v: string): string {
  const t = v.trim();
  return t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
}

export function requestOrigin(url: URL, headers: Headers): string {
  let proto: string | undefined;
  let host: string | undefined;
  const forwarded = headers.get('forwarded');
  if (forwarded) {
    // Use the first (client-most) element: "for=…;proto=https;host=example.org, …"
    const first = forwarded.split(',')[0] ?? '';
    for (const pair of first.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      const name = pair.slice(0, eq).trim().toLowerCase();
      const value = unquote(pair.slice(eq + 1));
      if (name === 'proto') proto = value.toLowerCase();
      if (name === 'host') host = value;
    }
  }
  proto ??= headers.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase();
  host ??= headers.get('x-forwarded-host')?.split(',')[0]?.trim();
  if (proto !== 'http' && proto !== 'https') proto = url.protocol.replace(':', '');
  if (!host || !HOST_PATTERN.test(host)) host = url.host;
  return `${proto}://${host}`;
}

/** Builder of the archive's resource URLs for one request. */
export class ResourceUrls {
  constructor(readonly base: string) {}
  study(study: string): string {
    return `${this.base}/studies/${study}`;
  }
  series(study: string, series: string): string {
    return `${this.study(study)}/series/${series}`;
  }
  instance(study: string, series: string, sop: string): string {
    return `${this.series(study, series)}/instances/${sop}`;
  }
  bulkData(study: string, series: string, sop: string, path: string): string {
    return `${this.instance(study, series, sop)}/bulkdata/${path}`;
  }
}
