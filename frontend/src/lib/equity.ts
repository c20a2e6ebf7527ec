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

/** The underwater curve: at each point, equity minus its running peak so far (≤ 0, in dollars) and the same as a
 * fraction of that peak (≤ 0; 0 when the peak is not positive). Its minimum is −maxDrawdown. */
export function drawdown(equity: number[]): { dollars: number[]; fraction: number[] } {
  const dollars: number[] = [];
  const fraction: number[] = [];
  let peak = -Infinity;
  for (const e of equity) {
    peak = Math.max(peak, e);
    const d = e - peak;
    dollars.push(d === 0 ? 0 : d);
    fraction.push(peak > 0 && d !== 0 ? d / peak : 0);
  }
  return { dollars, fraction };
}
