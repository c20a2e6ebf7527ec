import { Link } from "@tanstack/react-router";
import { createColumnHelper, flexRender, getCoreRowModel, useReactTable } from "@tanstack/react-table";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef } from "react";
import type { MarketSummary } from "../client";
import { count, num, pct, spread } from "../lib/format";
import type { MarketSortKey, SortOrder } from "../lib/marketsSearch";
import { Time } from "./States";

type ColumnMeta = { numeric?: boolean; sort?: MarketSortKey };

const col = createColumnHelper<MarketSummary>();

/** A change of probability in points: "+2.5 pts", "−0.3 pts", "0 pts". */
export function points(value: string | null | undefined): string {
  const n = num(value);
  if (n === null) return "—";
  const p = Math.round(n * 1000) / 10;
  if (p === 0) return "0 pts";
  return `${p > 0 ? "+" : "−"}${Math.abs(p).toFixed(1)} pts`;
}

const columns = [
  col.accessor("ticker", {
    header: "Market",
    cell: (c) => (
      <Link to="/markets/$ticker" params={{ ticker: c.getValue() }} className="market-link">
        <span className="ticker">{c.getValue()}</span>
        <span className="title">{c.row.original.title ?? ""}</span>
      </Link>
    ),
    meta: { sort: "ticker" } satisfies ColumnMeta,
  }),
  col.accessor("category", { header: "Category", cell: (c) => c.getValue() ?? "—" }),
  col.accessor("status", {
    header: "Status",
    cell: (c) => <span className={`status status-${c.getValue()}`}>{c.getValue()}</span>,
  }),
  col.accessor("implied_probability", {
    header: "Implied prob.",
    // Keyed by its value: a live change remounts the cell's text, which flashes once (.live-row .tick).
    cell: (c) => (
      <span key={c.getValue() ?? "none"} className="tick" title={c.row.original.implied_probability_source ?? "no price"}>
        {pct(c.getValue())}
      </span>
    ),
    meta: { numeric: true, sort: "implied_probability" } satisfies ColumnMeta,
  }),
  col.accessor("change_24h", {
    header: "24 h",
    cell: (c) => {
      const text = points(c.getValue());
      const tone = text.startsWith("+") ? "pos" : text.startsWith("−") ? "neg" : undefined;
      return (
        <span className={tone} title="implied probability now minus 24 h ago (or since the market was first recorded)">
          {text}
        </span>
      );
    },
    meta: { numeric: true, sort: "change_24h" } satisfies ColumnMeta,
  }),
  col.display({
    id: "spread",
    header: "Spread",
    cell: (c) => spread(c.row.original.yes_bid, c.row.original.yes_ask),
    meta: { numeric: true } satisfies ColumnMeta,
  }),
  col.accessor("volume", {
    header: "Volume",
    cell: (c) => count(c.getValue()),
    meta: { numeric: true, sort: "volume" } satisfies ColumnMeta,
  }),
  col.accessor("close_time", {
    header: "Closes",
    cell: (c) => <Time iso={c.getValue()} short />,
    meta: { sort: "close_time" } satisfies ColumnMeta,
  }),
];

/** Every row is this tall (the title is cut to one line), so the virtualiser needs no measuring. */
export const ROW_HEIGHT = 52;

export type MarketsTableProps = {
  markets: MarketSummary[];
  sort: MarketSortKey;
  order: SortOrder;
  onSort: (column: MarketSortKey) => void;
  /** The tickers of the rows on screen (for live updates), reported as the view scrolls. */
  onVisibleChange?: (tickers: string[]) => void;
  /** Called when the last rows come into view (to load the next page). */
  onEndReached?: () => void;
  /** Tickers updated live since their row was listed (marked on the row). */
  liveTickers?: ReadonlySet<string>;
  footer?: React.ReactNode;
};

/** The markets, sorted by the server; only the rows in view (and a few around) are in the DOM. */
export function MarketsTable({ markets, sort, order, onSort, onVisibleChange, onEndReached, liveTickers, footer }: MarketsTableProps) {
  const table = useReactTable({
    data: markets,
    columns,
    getCoreRowModel: getCoreRowModel(),
    getRowId: (m) => m.ticker,
    manualSorting: true,
  });
  const rows = table.getRowModel().rows;
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 8,
    getItemKey: (i) => rows[i]?.id ?? i,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items.at(-1)?.index ?? -1;

  const visibleKey = rows
    .slice(first, last + 1)
    .map((r) => r.id)
    .join(",");
  const onVisible = useRef(onVisibleChange);
  onVisible.current = onVisibleChange;
  useEffect(() => {
    onVisible.current?.(visibleKey ? visibleKey.split(",") : []);
  }, [visibleKey]);

  const nearEnd = rows.length > 0 && last >= rows.length - 10;
  const onEnd = useRef(onEndReached);
  onEnd.current = onEndReached;
  useEffect(() => {
    if (nearEnd) onEnd.current?.();
  }, [nearEnd, rows.length]);

  const top = items[0]?.start ?? 0;
  const bottom = items.length ? virtualizer.getTotalSize() - items.at(-1)!.end : 0;
  const width = table.getVisibleLeafColumns().length;

  return (
    <div className="table-wrap markets-scroll" ref={scrollRef}>
      <table className="data markets" aria-rowcount={rows.length + 1}>
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id}>
              {hg.headers.map((h) => {
                const meta = h.column.columnDef.meta as ColumnMeta | undefined;
                const active = meta?.sort !== undefined && meta.sort === sort;
                const label = flexRender(h.column.columnDef.header, h.getContext());
                return (
                  <th
                    key={h.id}
                    className={meta?.numeric ? "num" : undefined}
                    aria-sort={active ? (order === "asc" ? "ascending" : "descending") : meta?.sort ? "none" : undefined}
                  >
                    {meta?.sort ? (
                      <button type="button" className="sort" onClick={() => onSort(meta.sort!)}>
                        {label}
                        <span aria-hidden="true">{active ? (order === "asc" ? " ▲" : " ▼") : ""}</span>
                      </button>
                    ) : (
                      label
                    )}
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {top > 0 && (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={width} style={{ height: top }} />
            </tr>
          )}
          {items.map((v) => {
            const row = rows[v.index]!;
            return (
              <tr
                key={row.id}
                data-index={v.index}
                aria-rowindex={v.index + 2}
                style={{ height: ROW_HEIGHT }}
                className={liveTickers?.has(row.id) ? "live-row" : undefined}
              >
                {row.getVisibleCells().map((cell) => (
                  <td key={cell.id} className={(cell.column.columnDef.meta as ColumnMeta | undefined)?.numeric ? "num" : undefined}>
                    {flexRender(cell.column.columnDef.cell, cell.getContext())}
                  </td>
                ))}
              </tr>
            );
          })}
          {bottom > 0 && (
            <tr aria-hidden="true" className="spacer">
              <td colSpan={width} style={{ height: bottom }} />
            </tr>
          )}
        </tbody>
      </table>
      {footer}
    </div>
  );
}
