/**
 * Everything a transaction needs, assembled once per process (per Lambda
 * cold start, or once by the embedded server). The core gets its runtime
 * capabilities (hashing, ids, time, logging) injected so it stays free of
 * Node and AWS specifics.
 */
import type { ArchiveIndex, BlobStore } from './ports';

export interface Hasher {
  update(chunk: Uint8Array): void;
  /** lower-case hex digest */
  digest(): string;
}

export interface ArchiveLimits {
  /** Max bytes of one STOW request body. */
  maxRequestBytes: number;
  /** Max parts in one STOW request. */
  maxParts: number;
  /** Max bytes before the header (everything up to Pixel Data) must have been parsed. */
  maxHeaderBytes: number;
  /** Largest object WADO converts between uncompressed syntaxes in memory. */
  maxTranscodeBytes: number;
  /** QIDO: default and maximum page size. */
  defaultQueryLimit: number;
  maxQueryLimit: number;
}

export const DEFAULT_LIMITS: ArchiveLimits = {
  maxRequestBytes: 4 * 1024 * 1024 * 1024,
  maxParts: 10_000,
  maxHeaderBytes: 64 * 1024 * 1024,
  maxTranscodeBytes: 512 * 1024 * 1024,
  defaultQueryLimit: 100,
  maxQueryLimit: 1000,
};

/** Structured, PHI-free log sink: only codes, UIDs-free counters and timings go in. */
export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

export interface ArchiveContext {
  blobs: BlobStore;
  index: ArchiveIndex;
  createHash: () => Hasher;
  /** random lower-case alphanumeric id, ≥ 8 chars (names a blob object) */
  newObjectId: () => string;
  now: () => Date;
  limits: ArchiveLimits;
  log: Logger;
}
