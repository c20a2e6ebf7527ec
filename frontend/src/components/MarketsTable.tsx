import { Link } from "@tanstack/react-router";
import {
  createColumnHelper,
  flexRender,
  getCoreRowModel,
  getSortedRowModel,
  useReactTable,
  type SortingState,
} from "@tanstack/react-table";
import { useMemo, useState } from "react";
import type { MarketSummary } from "../client";
import { count, num, pct, spread } from "../lib/format";
import { Empty, Time } from "./States";

const col = createColumnHelper<MarketSummary>();

const columns = [
  col.accessor("ticker", {
    header: "Market",
    cell: (c) => (
      <Link to="/markets/$ticker" params={{ ticker: c.getValue() }} className="market-link">
        <span className="ticker">{c.getValue()}</span>
        <span className="title">{c.row.original.title ?? ""}</span>
      </Link>
    ),
  }),
  col.accessor("category", { header: "Category", cell: (c) => c.getValue() ?? "—" }),
  col.accessor("status", { header: "Status", cell: (c) => <span className={`status status-${c.getValue()}`}>{c.getValue()}</span> }),
  col.accessor((m) => num(m.implied_probability) ?? undefined, {
    id: "implied_probability",
    header: "Implied prob.",
    sortUndefined: "last",
    cell: (c) => <span title={c.row.original.implied_probability_source ?? "no price"}>{pct(c.row.original.implied_probability)}</span>,
    meta: { numeric: true },
  }),
  col.accessor((m) => {
    const b = num(m.yes_bid), a = num(m.yes_ask);
    return b === null || a === null ? undefined : a - b;
  }, {
    id: "spread",
    header: "Spread",
    sortUndefined: "last",
    cell: (c) => spread(c.row.original.yes_bid, c.row.original.yes_ask),
    meta: { numeric: true },
  }),
  col.accessor((m) => num(m.volume) ?? undefined, {
    id: "volume",
    header: "Volume",
    sortUndefined: "last",
    cell: (c) => count(c.row.original.volume),
    meta: { numeric: true },
  }),
  col.accessor("close_time", { header: "Closes", cell: (c) => <Time iso={c.getValue()} short /> }),
];

export type MarketFilter = { text: string; category: string };

/** Markets whose ticker or title holds every word of ``text`` (any case), in ``category`` when one is chosen. */
export function filterMarkets(markets: MarketSummary[], filter: MarketFilter): MarketSummary[] {
  const words = filter.text.toLowerCase().split(/\s+/).filter(Boolean);
  return markets.filter((m) => {
    if (filter.category && (m.category ?? "").toLowerCase() !== filter.category.toLowerCase()) return false;
    const hay = `${m.ticker} ${m.title ?? ""} ${m.event_ticker}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
}

export function categoriesOf(markets: MarketSummary[]): string[] {
  return [...new Set(markets.map((m) => m.category).filter((c): c is string => !!c))].sort();
}

export function MarketsTable({ markets }: { markets: MarketSummary[] }) {
  const [sorting, setSorting] = useState<SortingState>([{ id: "volume", desc: true }]);
  const data = useMemo(() => markets, [markets]);
  const table = useReactTable({
    data,
    columns,
    state: { sorting },
    onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
    getRowId: (m) => m.ticker,
  });
  if (markets.length === 0) return <Empty>No market matches these filters.</Empty>;
  return (
    <div className="table-wrap">
      <table className="data markets">
        <thead>
          {table.getHeaderGroups().map((hg) => (
            <tr key={hg.id}>
              {hg.headers.map((h) => {
                const sorted = h.column.getIsSorted();
                const numeric = (h.column.columnDef.meta as { numeric?: boolean } | undefined)?.numeric;
                return (
                  <th
                    key={h.id}
                    className={numeric ? "num" : undefined}
                    aria-sort={sorted === "asc" ? "ascending" : sorted === "desc" ? "descending" : "none"}
                  >
                    <button type="button" className="sort" onClick={h.column.getToggleSortingHandler()}>
                      {flexRender(h.column.columnDef.header, h.getContext())}
                      <span aria-hidden="true">{sorted === "asc" ? " ▲" : sorted === "desc" ? " ▼" : ""}</span>
                    </button>
                  </th>
                );
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {table.getRowModel().rows.map((row) => (
            <tr key={row.id}>
              {row.getVisibleCells().map((cell) => (
                <td
                  key={cell.id}
                  className={(cell.column.columnDef.meta as { numeric?: boolean } | undefined)?.numeric ? "num" : undefined}
                >
                  {flexRender(cell.column.columnDef.cell, cell.getContext())}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
