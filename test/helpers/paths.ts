import * as path from 'node:path';

export const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** The public pydicom corpus, beside the project (see ../shared/testdata/README.md). */
export const PYDICOM_DIR = path.resolve(PROJECT_ROOT, '..', 'shared', 'testdata', 'pydicom');
export const CHARSET_DIR = path.join(PYDICOM_DIR, 'charset_files');
