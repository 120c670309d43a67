/**
 * A demo failure we expected could happen (a missing binary, a user we cannot create, a directory
 * the server user cannot enter): its message is the whole story for the user, one line saying what
 * failed and what to do, so the demo prints it instead of a stack trace.
 */
export class DemoFailure extends Error {
  override readonly name = 'DemoFailure';
}

/** The message of any thrown value, causes included, on one line (for failures we did not expect). */
export function oneLine(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e !== undefined && parts.length < 4; e = e instanceof Error ? e.cause : undefined) {
    const text = e instanceof Error ? e.message || e.name : String(e);
    parts.push(text);
  }
  return parts
    .join(': ')
    .replace(/\s*\n\s*/g, ' | ')
    .trim();
}
