// Numbers arrive as exact decimal strings ("0.4350"); they are shown, never computed with, except for charts.

export function num(value: string | null | undefined): number | null {
  if (value === null || value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/** A probability or price 0–1 as a percentage: "43.5%". */
export function pct(value: string | null | undefined, digits = 1): string {
  const n = num(value);
  return n === null ? "—" : `${(n * 100).toFixed(digits)}%`;
}

/** A price 0–1 in cents: "43.5¢". */
export function cents(value: string | null | undefined): string {
  const n = num(value);
  if (n === null) return "—";
  const c = Math.round(n * 10000) / 100;
  return `${Number.isInteger(c) ? c.toFixed(0) : c.toString()}¢`;
}

/** The spread between the best YES bid and ask, in cents, or "—" when a side is missing. */
export function spread(bid: string | null | undefined, ask: string | null | undefined): string {
  const b = num(bid);
  const a = num(ask);
  if (b === null || a === null) return "—";
  return cents(String(a - b));
}

const money = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2 });

export function usd(value: string | null | undefined): string {
  const n = num(value);
  return n === null ? "—" : money.format(n);
}

export function count(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  const n = typeof value === "number" ? value : num(value);
  return n === null ? "—" : n.toLocaleString();
}

const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const localShort = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });

/** A time in the user's zone; its UTC form goes in a title (shown on hover). */
export function localTime(iso: string | null | undefined, short = false): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return (short ? localShort : local).format(d);
}

export function utcTitle(iso: string | null | undefined): string | undefined {
  if (!iso) return undefined;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString().replace(".000Z", "Z") + " (UTC)";
}

export const TIME_ZONE: string = Intl.DateTimeFormat().resolvedOptions().timeZone;
