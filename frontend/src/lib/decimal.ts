// Exact decimal arithmetic for the few sums the dashboard makes of the API's money strings (a session's equity from
// its cash and positions): fixed point with 8 decimal places in a BigInt, so "0.1" + "0.2" is "0.3" exactly.

const SCALE = 100_000_000n;
const DIGITS = 8;

export type Dec = bigint;

/** "12.3400" → a Dec; null for anything that is not a plain decimal number. */
export function dec(text: string | null | undefined): Dec | null {
  if (text === null || text === undefined) return null;
  const m = /^\s*(-?)(\d*)(?:\.(\d*))?\s*$/.exec(text);
  if (!m || (!m[2] && !m[3])) return null;
  const frac = (m[3] ?? "").slice(0, DIGITS).padEnd(DIGITS, "0");
  const v = BigInt(m[2] || "0") * SCALE + BigInt(frac);
  return m[1] ? -v : v;
}

export const ZERO: Dec = 0n;

/** a × b (rounded toward zero to 8 places: exact for prices and counts of 4 places). */
export function mul(a: Dec, b: Dec): Dec {
  return (a * b) / SCALE;
}

export function sum(values: Dec[]): Dec {
  return values.reduce((s, v) => s + v, ZERO);
}

/** A Dec as a decimal string with 4 places (the API's money form), rounded half away from zero. */
export function str(v: Dec, places = 4): string {
  const unit = 10n ** BigInt(DIGITS - places);
  const neg = v < 0n;
  let a = neg ? -v : v;
  a = (a + unit / 2n) / unit;
  const p = 10n ** BigInt(places);
  const whole = (a / p).toString();
  const frac = (a % p).toString().padStart(places, "0");
  return `${neg && a !== 0n ? "-" : ""}${whole}${places ? `.${frac}` : ""}`;
}

/** The largest fall from a previous peak over a series, ≥ 0. */
export function maxDrawdownDec(values: Dec[]): Dec {
  let peak: Dec | null = null;
  let worst = ZERO;
  for (const v of values) {
    if (peak === null || v > peak) peak = v;
    if (peak - v > worst) worst = peak - v;
  }
  return worst;
}
