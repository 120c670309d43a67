/**
 * The extract() calls of one stream whose answers have not settled yet, so that end() waits for
 * every batch asked before it, also those still waiting for room to be sent.
 */
const noop = (): void => {};

export class UnsettledBatches {
  private readonly pending = new Set<Promise<void>>();

  /** Remembers `answer` until it settles; gives it back unchanged. */
  track<T>(answer: Promise<T>): Promise<T> {
    const settled = answer.then(noop, noop);
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
    return answer;
  }

  /** Resolves once every answer tracked so far has settled (never rejects). */
  async allSettled(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
