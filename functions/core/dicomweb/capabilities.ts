/**
 * Capabilities (PS3.18 §8.9): `OPTIONS /dicom-web` answers a WADL document
 * (application/vnd.sun.wadl+xml, the default of §8.9.1) listing each resource,
 * its methods, the transaction name and the media types produced/consumed.
 */
interface RouteInfo {
  method: string;
  path: string;
  name: string;
}

const PRODUCES: Record<string, string[]> = {
  storeInstances: ['application/dicom+json'],
  searchForStudies: ['application/dicom+json'],
  searchForSeries: ['application/dicom+json'],
  searchForInstances: ['application/dicom+json'],
  retrieveStudy: ['multipart/related; type="application/dicom"'],
  retrieveSeries: ['multipart/related; type="application/dicom"'],
  retrieveInstance: ['multipart/related; type="application/dicom"'],
  retrieveStudyMetadata: ['application/dicom+json'],
  retrieveSeriesMetadata: ['application/dicom+json'],
  retrieveInstanceMetadata: ['application/dicom+json'],
  retrieveInstanceFrames: ['multipart/related; type="application/octet-stream"', 'multipart/related; type="image/jpeg"', 'multipart/related; type="image/jls"', 'multipart/related; type="image/jp2"', 'multipart/related; type="image/dicom-rle"'],
  retrieveBulkData: ['multipart/related; type="application/octet-stream"'],
};

const CONSUMES: Record<string, string[]> = {
  storeInstances: ['multipart/related; type="application/dicom"', 'application/dicom'],
};

const QUERY_PARAMS: Record<string, string[]> = {
  searchForStudies: ['{attributeID}', 'includefield', 'fuzzymatching', 'limit', 'offset'],
  searchForSeries: ['{attributeID}', 'includefield', 'fuzzymatching', 'limit', 'offset'],
  searchForInstances: ['{attributeID}', 'includefield', 'fuzzymatching', 'limit', 'offset'],
};

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function capabilitiesDocument(routes: RouteInfo[], base: string): string {
  const byPath = new Map<string, RouteInfo[]>();
  for (const r of routes) {
    const list = byPath.get(r.path) ?? [];
    list.push(r);
    byPath.set(r.path, list);
  }
  const resources = [...byPath.entries()].map(([path, list]) => {
    const methods = list
      .map((r) => {
        const params = (QUERY_PARAMS[r.name] ?? []).map((p) => `        <param name="${xml(p)}" style="query" required="false"/>`).join('\n');
        const req = (CONSUMES[r.name] ?? []).map((m) => `        <representation mediaType="${xml(m)}"/>`).join('\n');
        const res = (PRODUCES[r.name] ?? []).map((m) => `        <representation mediaType="${xml(m)}"/>`).join('\n');
        return [
          `      <method name="${r.method}" id="${xml(r.name)}">`,
          params || req ? `       <request>\n${[params, req].filter(Boolean).join('\n')}\n       </request>` : '',
          `       <response status="200">\n${res}\n       </response>`,
          `      </method>`,
        ].filter(Boolean).join('\n');
      })
      .join('\n');
    return `    <resource path="${xml(path.replace(/^\//, ''))}">\n${methods}\n    </resource>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<application xmlns="http://wadl.dev.java.net/2009/02">',
    `  <resources base="${xml(base)}/">`,
    ...resources,
    '  </resources>',
    '</application>',
    '',
  ].join('\n');
}
