/** Batches of one partition commit in order: each waits for the one before it, and fails if that one failed. */
export class EarlierBatchFailedError extends Error {
  constructor(readonly causeError: unknown) {
    super(`an earlier batch failed: ${causeError instanceof Error ? causeError.message : String(causeError)}`);
    this.name = 'EarlierBatchFailedError';
  }
}

export async function awaitEarlierBatches(earlierCommitted: Promise<void>): Promise<void> {
  try {
    await earlierCommitted;
  } catch (error) {
    throw new EarlierBatchFailedError(error);
  }
}
