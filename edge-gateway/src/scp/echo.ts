/**
 * C-ECHO SCP (PS3.4 Annex A, PS3.7 §9.1.5): the Verification service answers
 * Success while the gateway can accept work. With a health check it answers
 * 0xA700 (out of resources) when, e.g., the spool is not writable, so a
 * modality's "test connection" tells the truth.
 */
import { Status } from '../dimse/command';
import type { DimseServices, ServiceResult } from '../dimse/types';

export function createEchoService(healthy?: () => Promise<boolean> | boolean): NonNullable<DimseServices['echo']> {
  return async (): Promise<ServiceResult> => {
    if (healthy && !(await healthy())) return { status: Status.OutOfResources, errorComment: 'gateway cannot store right now' };
    return { status: Status.Success };
  };
}
