/**
 * Servers started by tests must not outlive the test process, also when it ends on an uncaught
 * error or Ctrl-C (an `after` hook does not run then). Each launcher registers a synchronous stop.
 */
const stops = new Set<() => void>();
let installed = false;

function stopAll(): void {
  for (const stop of stops) stop();
  stops.clear();
}

/** Runs `stop` when the process exits or is interrupted; returns the function that unregisters it. */
export function stopAtExit(stop: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', stopAll);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        stopAll();
        process.exit(130);
      });
    }
  }
  stops.add(stop);
  return () => stops.delete(stop);
}
