/**
 * Small pieces the query/retrieve SCPs (find.ts, move.ts, get.ts) share.
 */
import { SopClass } from '../dimse/sop-classes';
import type { InformationModel } from '../query-retrieve/identifier';

/** The information model of a Q/R abstract syntax (PS3.4 C.6.1.3 / C.6.2.3). */
export function modelOfAbstractSyntax(uid: string): InformationModel | undefined {
  if (uid === SopClass.PatientRootFind || uid === SopClass.PatientRootMove || uid === SopClass.PatientRootGet) return 'PATIENT';
  if (uid === SopClass.StudyRootFind || uid === SopClass.StudyRootMove || uid === SopClass.StudyRootGet) return 'STUDY';
  return undefined;
}

/** ErrorComment (0000,0902) is LO: at most 64 characters. */
export function errorComment(message: string): string {
  return message.length <= 64 ? message : `${message.slice(0, 61)}...`;
}

/** The promise's value, or 'cancelled' as soon as the signal fires (the promise is left to settle on its own). */
export function untilCancelled<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | 'cancelled'> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.resolve('cancelled');
  }
  return new Promise<T | 'cancelled'>((resolve, reject) => {
    const onAbort = () => resolve('cancelled');
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve('cancelled');
        else reject(e);
      },
    );
  });
}
