// Mocha runner for the integration tests; runs inside the VS Code extension host (extensionTestsPath contract:
// export run() returning a Promise). Writes a JSON summary to $SPARTAN_E2E_RESULTS.
const path = require('path');
const fs = require('fs');
const os = require('os');
const Mocha = require('mocha');

exports.run = function run() {
  const resultsFile = process.env.SPARTAN_E2E_RESULTS || path.join(os.tmpdir(), 'spartan-e2e-integration.json');
  const mocha = new Mocha({ ui: 'bdd', timeout: 90000, color: false, reporter: 'spec', bail: false });
  for (const f of fs
    .readdirSync(__dirname)
    .filter((f) => f.endsWith('.test.js'))
    .sort())
    mocha.addFile(path.join(__dirname, f));
  return new Promise((resolve, reject) => {
    const results = { passes: [], failures: [], timings: {}, startedAt: new Date().toISOString() };
    global.__spartanTimings = results.timings;
    const runner = mocha.run((failures) => {
      results.finishedAt = new Date().toISOString();
      results.summary = `${results.passes.length} passed, ${results.failures.length} failed`;
      fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
      fs.writeFileSync(resultsFile, JSON.stringify(results, null, 2));
      console.log('[integration] ' + results.summary);
      if (failures > 0) reject(new Error(`${failures} tests failed.`));
      else resolve();
    });
    runner.on('pass', (t) => results.passes.push({ title: t.fullTitle(), ms: t.duration }));
    runner.on('fail', (t, err) => results.failures.push({ title: t.fullTitle(), error: String((err && err.stack) || err) }));
  });
};
