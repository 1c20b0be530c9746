import { createHandler } from './create-handler';

/** Lambda entry point for the WADO service (API Gateway HTTP API, payload 2.0). */
export const handler = createHandler('wado');
