/**
 * The messages of W4 ping-pong: 64 bytes each, numbered by pair and round so
 * that an echo which comes back from the wrong pair, or out of turn, or with a
 * byte changed, fails the check.
 */

export const MESSAGE_SIZE = 64;

/** Number of socket pairs of a W4 configuration ("1pair", "100pairs"). */
export function pairsOf(config: string): number {
  const m = /^(\d+)pairs?$/.exec(config);
  if (m === null) throw new Error(`unknown ping-pong configuration '${config}'`);
  return Number(m[1]);
}

/** Writes message `round` of pair `pair` into buf[0..64). */
export function fillMessage(buf: Uint8Array, pair: number, round: number): void {
  buf[0] = round & 0xff;
  buf[1] = (round >>> 8) & 0xff;
  buf[2] = (round >>> 16) & 0xff;
  buf[3] = (round >>> 24) & 0xff;
  buf[4] = pair & 0xff;
  buf[5] = (pair >>> 8) & 0xff;
  for (let j = 6; j < MESSAGE_SIZE; j++) buf[j] = (j * 13 + pair) & 0xff;
}

/** Whether the first 64 bytes of a and b are equal. */
export function sameMessage(a: Uint8Array, b: Uint8Array): boolean {
  for (let j = 0; j < MESSAGE_SIZE; j++) if (a[j] !== b[j]) return false;
  return true;
}
