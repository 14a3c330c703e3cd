// The step runner every client flow here shares: one `PASS name` / `FAIL name: why` line per
// step (test_*.py read them), a step that throws or runs past the timeout fails and the flow goes
// on, and `finish()` ends the process with the count of failed steps.

export function stepper(describeError, { logSql = false, timeoutMs = 60000 } = {}) {
  let failures = 0;
  async function step(name, fn) {
    if (logSql) console.log(`---- ${name}`);
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`step timed out after ${timeoutMs / 1000} s`)), timeoutMs);
    });
    try {
      await Promise.race([fn(), timeout]);
      console.log(`PASS ${name}`);
    } catch (e) {
      failures += 1;
      console.log(`FAIL ${name}: ${describeError(e)}`);
    } finally {
      clearTimeout(timer);
    }
  }
  function finish() {
    console.log(failures ? `${failures} step(s) failed` : 'all steps passed');
    process.exit(failures ? 1 : 0);
  }
  return { step, finish };
}
