// Performance marks for the dashboard's budgets (bench/dashboard.py reads them): set in the animation frame after
// a change was applied, i.e. when the browser is about to paint it.
export function markPainted(name: string, detail: Record<string, unknown>): void {
  if (typeof performance === "undefined" || typeof requestAnimationFrame === "undefined") return;
  requestAnimationFrame(() => performance.mark(name, { detail }));
}
