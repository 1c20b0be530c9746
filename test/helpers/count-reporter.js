// Writes jest's totals to a file so scripts/test.sh can print the plain
// "N passed, N failed" line CI reads (jest's own summary is not read).
const fs = require('node:fs');
class CountReporter {
  onRunComplete(_contexts, results) {
    const file = process.env.TEST_COUNT_FILE;
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites;
    if (file) fs.writeFileSync(file, JSON.stringify({ passed: results.numPassedTests, failed, skipped: results.numPendingTests }));
  }
}
module.exports = CountReporter;
