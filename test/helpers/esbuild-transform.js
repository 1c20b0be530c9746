// jest transform: TypeScript → CommonJS with esbuild (already a dependency for
// bundling the Lambda handlers). Type checking is `tsc --noEmit` in `npm test`.
const { transformSync } = require('esbuild');

module.exports = {
  process(source, filename) {
    const result = transformSync(source, {
      loader: 'ts',
      format: 'cjs',
      target: 'node22',
      sourcemap: 'inline',
      sourcefile: filename,
    });
    return { code: result.code };
  },
};
