/**
 * The CLI process tree dies together. `bin/spartan.js` re-runs the CLI as a child (to set glibc tunables at
 * start-up) and names itself in SPARTAN_PARENT_PID. A SIGKILL of that wrapper (`timeout -s KILL`, the OOM
 * killer) cannot be forwarded, so the child watches for being re-parented and then stops itself with SIGTERM:
 * commands that handle it (train) stop at the next step without saving, the others end at once. Without this
 * an orphaned `train` kept running and replaced `--out` after its caller was gone.
 */
const POLL_MS = 200;

/** The wrapper's pid, read when this module loads (before exitWithParent removes it from the environment). */
const parentPid =
  Number.isInteger(Number(process.env.SPARTAN_PARENT_PID)) && Number(process.env.SPARTAN_PARENT_PID) > 0
    ? Number(process.env.SPARTAN_PARENT_PID)
    : undefined;

export function exitWithParent(): void {
  const expected = parentPid;
  if (expected === undefined) return;
  // Not for our own children (bench workers, …): they get their own wrapper-free environment.
  delete process.env.SPARTAN_PARENT_PID;
  if (process.ppid !== expected) {
    process.kill(process.pid, 'SIGTERM'); // the parent was gone before we started
    return;
  }
  let signalled = false;
  const timer = setInterval(() => {
    if (process.ppid === expected) return;
    if (!signalled) {
      signalled = true;
      process.kill(process.pid, 'SIGTERM');
    } else {
      process.exit(129); // a handler took SIGTERM but the process kept going
    }
  }, POLL_MS);
  timer.unref();
}

/** True once the parent named at start-up is gone (for a last check before an irreversible step such as a save). */
export function parentGone(): boolean {
  return parentPid !== undefined && process.ppid !== parentPid;
}
