// The markets page's view — search text, filters, sort — lives in the URL's search params, so a link reproduces
// it. The URL holds only what differs from the default view; the page reads it back with the defaults filled in.
import type { ListMarketsData } from "../client";

export const SORTS = ["volume", "change_24h", "implied_probability", "close_time", "ticker"] as const;
export type MarketSortKey = (typeof SORTS)[number];
export type SortOrder = "asc" | "desc";

export const STATUSES = [
  ["open", "Open"],
  ["unopened", "Not yet open"],
  ["paused", "Paused"],
  ["closed", "Closed"],
  ["settled", "Settled"],
  ["any", "Any status"],
] as const;
export type StatusWord = (typeof STATUSES)[number][0];

export type MarketsView = {
  q: string;
  status: StatusWord;
  category: string;
  series: string;
  sort: MarketSortKey;
  order: SortOrder;
};

/** What the URL holds: the fields that differ from the default view. */
export type MarketsSearch = Partial<MarketsView>;

export const DEFAULT_VIEW: MarketsView = { q: "", status: "open", category: "", series: "", sort: "volume", order: "desc" };

/** The order a sort starts in when its column is chosen: the biggest first, but the soonest close and A→Z. */
export const FIRST_ORDER: Record<MarketSortKey, SortOrder> = {
  volume: "desc",
  change_24h: "desc",
  implied_probability: "desc",
  close_time: "asc",
  ticker: "asc",
};

const text = (v: unknown, max = 200): string => (typeof v === "string" ? v.slice(0, max) : typeof v === "number" ? String(v) : "");

/** TanStack Router's validateSearch: any search params → the non-default, valid part (unknown values dropped). */
export function parseMarketsSearch(raw: Record<string, unknown>): MarketsSearch {
  const view: MarketsView = {
    q: text(raw.q).trim(),
    status: STATUSES.some(([s]) => s === raw.status) ? (raw.status as StatusWord) : DEFAULT_VIEW.status,
    category: text(raw.category).trim(),
    series: text(raw.series).trim(),
    sort: (SORTS as readonly unknown[]).includes(raw.sort) ? (raw.sort as MarketSortKey) : DEFAULT_VIEW.sort,
    order: raw.order === "asc" || raw.order === "desc" ? raw.order : DEFAULT_VIEW.order,
  };
  return toSearch(view);
}

/** The default view with the URL's fields over it. */
export function viewOf(search: MarketsSearch): MarketsView {
  return { ...DEFAULT_VIEW, ...search };
}

/** A view as URL search params: only what differs from the default. */
export function toSearch(view: MarketsView): MarketsSearch {
  const out: MarketsSearch = {};
  for (const key of Object.keys(DEFAULT_VIEW) as (keyof MarketsView)[]) {
    if (view[key] !== DEFAULT_VIEW[key]) (out as Record<string, string>)[key] = view[key];
  }
  return out;
}

/** A click on a sortable column's header: the same column flips its order; another starts in its first order. */
export function nextSort(view: MarketsView, column: MarketSortKey): Pick<MarketsView, "sort" | "order"> {
  if (view.sort === column) return { sort: column, order: view.order === "asc" ? "desc" : "asc" };
  return { sort: column, order: FIRST_ORDER[column] };
}

/** The listMarkets query of a view (one page from ``cursor``). */
export function listQuery(view: MarketsView, limit: number, cursor: string | null): NonNullable<ListMarketsData["query"]> {
  return {
    q: view.q || null,
    status: view.status === "any" ? null : view.status,
    category: view.category || null,
    series: view.series || null,
    sort: view.sort,
    order: view.order,
    limit,
    cursor,
  };
}
