/**
 * The edge gateway's configuration, as read from one JSON file (validated by
 * `config.ts`). Shared by the DIMSE side (scp/), the spool and uploader, and
 * the cloud client, so each part agrees on names and units.
 *
 * Durations are milliseconds, sizes bytes, unless the name says otherwise.
 */

/** A remote DICOM node the gateway may send to (C-MOVE destination, storage commitment reports). */
export interface RemoteNodeConfig {
  host: string;
  port: number;
  /** DIMSE over TLS (PS3.15 Annex B.1) when set. */
  tls?: boolean;
}

export interface TlsFilesConfig {
  /** PEM files, paths relative to the config file. */
  certFile: string;
  keyFile: string;
  /** CA bundle for verifying peers; with `requireClientCert` the gateway insists on one. */
  caFile?: string;
  requireClientCert?: boolean;
}

export interface DimseConfig {
  /** Called AE title the gateway answers to (PS3.8 §7.1.1.4; 1–16 chars, no backslash). */
  aeTitle: string;
  host: string;
  port: number;
  /** Calling AE titles allowed to associate; empty or absent means any. */
  allowedCallingAETitles?: string[];
  /** Peer IP addresses (exact) allowed to connect; empty or absent means any. */
  allowedIPs?: string[];
  /** Known remote AEs by AE title: C-MOVE destinations and storage commitment report targets. */
  destinations: Record<string, RemoteNodeConfig>;
  tls?: TlsFilesConfig;
  /** Our maximum receive PDU length, announced in A-ASSOCIATE-AC (PS3.8 §D.1). */
  maxPduLength: number;
  /** Simultaneous associations; more are rejected (A-ASSOCIATE-RJ, transient, local limit exceeded). */
  maxAssociations: number;
  /** An association with no PDU for this long is aborted. */
  idleTimeoutMs: number;
  /** ARTIM timer: time allowed for the A-ASSOCIATE-RQ after connect and for release (PS3.8 §9.1.5). */
  artimTimeoutMs: number;
}

/** How the gateway authenticates to the archive. */
export type CloudAuthConfig =
  | { kind: 'none' }
  | { kind: 'apiKey'; apiKey: string }
  | {
      /** OAuth 2.0 client credentials (RFC 6749 §4.4), e.g. the Cognito machine client. */
      kind: 'clientCredentials';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      scope?: string;
    };

export interface CloudConfig {
  /** DICOMweb base URL, e.g. http://127.0.0.1:8080/dicomweb or the deployed API's URL. */
  dicomWebUrl: string;
  auth: CloudAuthConfig;
  /** Per-request timeout. */
  requestTimeoutMs: number;
}

export interface SpoolConfig {
  /** Spool root; incoming/, queued/, inflight/, done/, quarantine/ live under it. */
  dir: string;
  /** fsync file and queue record before acknowledging a C-STORE (default true). */
  fsync: boolean;
  /** 'spool': C-STORE Success once spooled; 'cloud': only after the archive confirms. */
  ackMode: 'spool' | 'cloud';
  /** How long done/ records are kept (for storage commitment and status), then pruned. */
  doneRetentionMs: number;
  /**
   * Refuse new incoming files (C-STORE 0xA700, importer failure) while the spool's
   * file system has less free space than this; /healthz reports it. Default 256 MiB.
   */
  minFreeBytes?: number;
}

export interface UploaderConfig {
  concurrency: number;
  /** Instances at or above this size go through the large-object upload API instead of STOW. */
  largeObjectThresholdBytes: number;
  retry: { initialDelayMs: number; maxDelayMs: number; /** 0 = retry forever */ maxAttempts: number };
}

export interface HttpConfig {
  /** /healthz and /metrics; 0 disables. */
  port: number;
  host: string;
}

export interface GatewayConfig {
  dimse: DimseConfig;
  cloud: CloudConfig;
  spool: SpoolConfig;
  uploader: UploaderConfig;
  http: HttpConfig;
}
