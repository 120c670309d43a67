/**
 * The seed of a randomized test: from an environment variable when set (to replay a run), else from
 * the clock. Printed as soon as the test file loads, on every run, passed or failed, and before any
 * work: a CI log of a run that failed, hung or crashed names the seed to replay it with.
 */
export function fuzzSeed(variable: string, what: string): number {
  const given = process.env[variable];
  const seed = given === undefined || given === '' ? Date.now() % 1_000_000_007 : Number(given);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`${variable}=${given}: not a non-negative integer seed`);
  process.stderr.write(
    `${what}: seed ${seed} (${given === undefined || given === '' ? 'from the clock' : `from ${variable}`}; replay with ${variable}=${seed})\n`,
  );
  return seed;
}
