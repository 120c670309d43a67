/** A seeded pseudo-random source: the same seed gives the same test cases, demo rows and bench data. */
export type Rand = () => number;

/** mulberry32: small, fast, good enough to spread test cases (not for anything secret). */
export function seededRandom(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
