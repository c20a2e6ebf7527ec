/** The largest fall of equity from a previous peak, in dollars (as the API reports it for running sessions). */
export function maxDrawdown(equity: number[]): number {
  let peak = -Infinity;
  let worst = 0;
  for (const e of equity) {
    peak = Math.max(peak, e);
    worst = Math.max(worst, peak - e);
  }
  return worst;
}
