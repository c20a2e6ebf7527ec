// What every price/equity chart shares: times in the user's zone on the time axis, and the chart's look (light or
// dark, as the system prefers).
import { TickMarkType, type Time } from "lightweight-charts";

export const timeOf = (t: Time): Date => new Date((typeof t === "number" ? t : 0) * 1000);
export const hm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const hms = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
export const full = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A time-axis label: seconds when ticks are seconds apart (a live session sampled every few seconds), else the
 * minute, else the day. */
export function tickLabel(t: Time, type: TickMarkType): string {
  const d = timeOf(t);
  return type === TickMarkType.TimeWithSeconds ? hms.format(d) : type === TickMarkType.Time ? hm.format(d) : day.format(d);
}

/** Background, text and grid colours of a chart, for the system's light or dark scheme. */
export function chartLook() {
  const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
  const line = dark ? "#2a2e35" : "#eef0f3";
  return {
    layout: { background: { color: "transparent" }, textColor: dark ? "#d0d4da" : "#30343a", attributionLogo: false },
    grid: { vertLines: { color: line }, horzLines: { color: line } },
  };
}
