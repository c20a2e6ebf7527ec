import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { listMarkets } from "../client";
import { MarketsTable, categoriesOf, filterMarkets } from "../components/MarketsTable";
import { Empty, ErrorState, Loading } from "../components/States";
import { unwrap } from "../lib/api";

const STATUSES = [
  ["open", "Open"],
  ["unopened", "Not yet open"],
  ["paused", "Paused"],
  ["closed", "Closed"],
  ["settled", "Settled"],
  ["", "Any status"],
] as const;

export function MarketsPage() {
  const [status, setStatus] = useState<string>("open");
  const [text, setText] = useState("");
  const [category, setCategory] = useState("");
  const markets = useQuery({
    queryKey: ["markets", status],
    queryFn: () => unwrap(listMarkets({ query: { status: status || null, limit: 1000, sort: "volume", order: "desc" } })),
    refetchInterval: 5000,
    placeholderData: keepPreviousData,
  });
  const items = markets.data?.items;
  const categories = useMemo(() => categoriesOf(items ?? []), [items]);
  const shown = useMemo(() => filterMarkets(items ?? [], { text, category }), [items, text, category]);

  return (
    <section>
      <div className="page-head">
        <h1>Markets</h1>
        {items && (
          <span className="muted">
            {shown.length === items.length ? `${items.length} markets` : `${shown.length} of ${items.length} markets`}
            {markets.data?.next_cursor ? " (first 1,000)" : ""}
          </span>
        )}
      </div>
      <div className="filters" role="search">
        <input
          type="search"
          placeholder="Search ticker or title"
          aria-label="Search markets"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <select aria-label="Status" value={status} onChange={(e) => setStatus(e.target.value)}>
          {STATUSES.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
        <select aria-label="Category" value={category} onChange={(e) => setCategory(e.target.value)}>
          <option value="">All categories</option>
          {categories.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </div>
      {markets.isPending ? (
        <Loading what="markets" />
      ) : markets.isError && !items ? (
        <ErrorState error={markets.error} what="markets" retry={() => void markets.refetch()} />
      ) : items && items.length === 0 ? (
        <Empty>
          No {status ? `${STATUSES.find(([v]) => v === status)?.[1].toLowerCase()} ` : ""}markets recorded yet. The
          recorder adds them as it sees them.
        </Empty>
      ) : (
        <MarketsTable markets={shown} />
      )}
    </section>
  );
}
