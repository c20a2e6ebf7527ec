import { duration } from "./health";

/** Below this much data, an annualised ratio is noted as too short to read: a few hours of returns scaled
 * by √(periods per year) easily gives a Sharpe of ±1,000 that means nothing. */
export const SHORT_WINDOW_SECONDS = 7 * 86_400;

/** The span a backtest's Sharpe was annualised from: its returns × their interval (``metrics.annualisation``). */
export function annualisedSpan(metrics: Record<string, unknown> | null | undefined): number | null {
  const a = metrics?.annualisation;
  if (!a || typeof a !== "object") return null;
  const { returns, interval_seconds: interval } = a as { returns?: unknown; interval_seconds?: unknown };
  if (typeof returns !== "number" || typeof interval !== "number" || returns <= 0 || interval <= 0) return null;
  return returns * interval;
}

/** A visible note under an annualised ratio drawn from a short window; null when the window is long enough. */
export function shortWindowNote(spanSeconds: number | null): string | null {
  if (spanSeconds === null || !Number.isFinite(spanSeconds) || spanSeconds >= SHORT_WINDOW_SECONDS) return null;
  return `from ${duration(Math.max(0, spanSeconds))} of data: too short to annualise`;
}
