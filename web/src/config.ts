/**
 * `config.json`: what the web UI learns from whoever serves it (the embedded
 * server, or the CDK construct for S3 + CloudFront). Shared by both sides.
 */
export interface WebConfig {
  /** DICOMweb base: a same-origin path (`/dicom-web`) or the API's absolute URL (AWS). */
  dicomWebRoot: string;
  /** Where the OHIF viewer is served (`/viewer`); its study route is `${viewerUrl}/viewer?StudyInstanceUIDs=…`. */
  viewerUrl: string;
  auth: {
    /** The archive wants credentials (API key or token); false only on the open loopback server. */
    required: boolean;
    /** Authorization code + PKCE against this issuer (RFC 7636), when configured. */
    oidc?: { issuer: string; clientId: string; scope: string };
  };
  /** Largest STOW-RS request the UI sends (Lambda: ~4.5 MB after base64; embedded: more). */
  stowMaxBytes: number;
  /** Files at least this large go through the upload API (docs/upload-api.md) instead of STOW. */
  uploadApiFromBytes: number;
}
