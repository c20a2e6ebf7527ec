import { keepPreviousData, useInfiniteQuery } from "@tanstack/react-query";
import { useNavigate, useSearch } from "@tanstack/react-router";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { listMarkets, type Snapshot } from "../client";
import { MarketsTable } from "../components/MarketsTable";
import { Empty, ErrorState, Loading } from "../components/States";
import { unwrap } from "../lib/api";
import { mergeLive } from "../lib/liveRows";
import {
  DEFAULT_VIEW,
  STATUSES,
  listQuery,
  nextSort,
  toSearch,
  viewOf,
  type MarketSortKey,
  type MarketsView,
} from "../lib/marketsSearch";
import { useMarketStream } from "../lib/stream";

/** Rows per request; further pages load as the view nears the end of the list. */
export const PAGE_SIZE = 200;
const TYPING_MS = 250;
const VISIBLE_SETTLE_MS = 300;

export function MarketsPage() {
  const search = useSearch({ from: "/" });
  const view = useMemo(() => viewOf(search), [search]);
  const navigate = useNavigate({ from: "/" });
  const setView = useCallback(
    (patch: Partial<MarketsView>, replace = false) =>
      void navigate({ search: toSearch({ ...view, ...patch }), replace }),
    [navigate, view],
  );

  // The search box: typed text goes to the URL once typing pauses; the URL (back/forward, a link) sets the box.
  const [text, setText] = useState(view.q);
  const pushed = useRef(view.q);
  useEffect(() => {
    if (view.q !== pushed.current) {
      pushed.current = view.q;
      setText(view.q);
    }
  }, [view.q]);
  useEffect(() => {
    const q = text.trim();
    if (q === view.q) return;
    const id = window.setTimeout(() => {
      pushed.current = q;
      setView({ q }, true);
    }, TYPING_MS);
    return () => window.clearTimeout(id);
  }, [text, view.q, setView]);

  const markets = useInfiniteQuery({
    queryKey: ["markets", view],
    queryFn: ({ pageParam }) => unwrap(listMarkets({ query: listQuery(view, PAGE_SIZE, pageParam) })),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    placeholderData: keepPreviousData,
    refetchInterval: 30_000, // new markets; quotes of the rows on screen arrive over the stream
  });
  const items = useMemo(() => markets.data?.pages.flatMap((p) => p.items) ?? [], [markets.data]);

  // Categories and series seen so far, offered in the filters (kept when a filter narrows the list).
  const [known, setKnown] = useState<{ categories: string[]; series: string[] }>({ categories: [], series: [] });
  useEffect(() => {
    setKnown((k) => {
      const categories = new Set(k.categories);
      const series = new Set(k.series);
      for (const m of items) {
        if (m.category) categories.add(m.category);
        if (m.series_ticker) series.add(m.series_ticker);
      }
      if (categories.size === k.categories.length && series.size === k.series.length) return k;
      return { categories: [...categories].sort(), series: [...series].sort() };
    });
  }, [items]);

  // Live quotes for the rows on screen.
  const [visible, setVisible] = useState<string[]>([]);
  const settle = useRef<number>();
  const onVisibleChange = useCallback((tickers: string[]) => {
    window.clearTimeout(settle.current);
    settle.current = window.setTimeout(() => setVisible(tickers), VISIBLE_SETTLE_MS);
  }, []);
  useEffect(() => () => window.clearTimeout(settle.current), []);
  const [live, setLive] = useState<Record<string, Snapshot>>({});
  const [liveCount, setLiveCount] = useState(0);
  const stream = useMarketStream(
    visible,
    {
      snapshot: (s) => {
        setLive((prev) => ({ ...prev, [s.ticker]: s }));
        setLiveCount((n) => n + 1);
      },
      reset: () => void markets.refetch(),
    },
    visible.length > 0,
  );
  const rows = useMemo(() => items.map((m) => mergeLive(m, live[m.ticker])), [items, live]);
  const liveTickers = useMemo(
    () => new Set(rows.filter((r, i) => r !== items[i]).map((r) => r.ticker)),
    [rows, items],
  );

  const onSort = (column: MarketSortKey) => setView(nextSort(view, column));
  const onEndReached = useCallback(() => {
    if (markets.hasNextPage && !markets.isFetchingNextPage) void markets.fetchNextPage();
  }, [markets]);
  const filtered = view.q || view.category || view.series || view.status !== DEFAULT_VIEW.status;
  const statusLabel = STATUSES.find(([v]) => v === view.status)?.[1].toLowerCase();

  return (
    <section data-live-updates={liveCount}>
      <div className="page-head">
        <h1>Markets</h1>
        <span className="muted">
          {markets.data && (
            <>
              {items.length.toLocaleString()} {items.length === 1 ? "market" : "markets"}
              {markets.hasNextPage ? " loaded, more as you scroll" : ""}
            </>
          )}
          {visible.length > 0 && (
            <span
              className={`live-pill live-${stream}`}
              data-testid="markets-stream"
              title="quotes of the rows on screen update as they are recorded"
            >
              {stream === "live" ? "live" : stream === "down" ? "offline" : "connecting"}
            </span>
          )}
        </span>
      </div>
      <div className="filters" role="search">
        <input
          type="search"
          placeholder="Search ticker or title"
          aria-label="Search markets"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <select aria-label="Status" value={view.status} onChange={(e) => setView({ status: e.target.value as MarketsView["status"] })}>
          {STATUSES.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <select aria-label="Category" value={view.category} onChange={(e) => setView({ category: e.target.value })}>
          <option value="">All categories</option>
          {[...new Set([...known.categories, ...(view.category ? [view.category] : [])])].sort().map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <SeriesFilter value={view.series} options={known.series} onChange={(series) => setView({ series })} />
        {filtered && (
          <button type="button" className="link-button" onClick={() => { setText(""); pushed.current = ""; setView({ ...DEFAULT_VIEW, sort: view.sort, order: view.order }); }}>
            Clear filters
          </button>
        )}
      </div>
      {markets.isPending ? (
        <Loading what="markets" />
      ) : markets.isError && !markets.data ? (
        <ErrorState error={markets.error} what="markets" retry={() => void markets.refetch()} />
      ) : items.length === 0 ? (
        <Empty>
          {filtered
            ? "No market matches these filters."
            : `No ${statusLabel ? `${statusLabel} ` : ""}markets recorded yet. The recorder adds them as it sees them.`}
        </Empty>
      ) : (
        <MarketsTable
          markets={rows}
          sort={view.sort}
          order={view.order}
          onSort={onSort}
          onVisibleChange={onVisibleChange}
          onEndReached={onEndReached}
          liveTickers={liveTickers}
          footer={
            markets.isFetchingNextPage ? (
              <div className="table-foot muted small" role="status">
                Loading more…
              </div>
            ) : null
          }
        />
      )}
    </section>
  );
}

/** A series ticker typed (with suggestions from the series seen), applied on Enter or when the field is left. */
function SeriesFilter({ value, options, onChange }: { value: string; options: string[]; onChange: (v: string) => void }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  const apply = () => {
    const v = draft.trim().toUpperCase();
    if (v !== value) onChange(v);
  };
  return (
    <>
      <input
        className="series-filter"
        aria-label="Series"
        placeholder="Series ticker"
        list="series-options"
        value={draft}
        onChange={(e) => {
          setDraft(e.target.value);
          // A suggestion picked from the list applies at once.
          if (options.includes(e.target.value)) onChange(e.target.value);
        }}
        onBlur={apply}
        onKeyDown={(e) => {
          if (e.key === "Enter") apply();
        }}
      />
      <datalist id="series-options">
        {options.map((s) => (
          <option key={s} value={s} />
        ))}
      </datalist>
    </>
  );
}
