import type { OrderBook } from "../client";
import { ladders, type Ladder, type Rung } from "../lib/ladder";

const c = (p: number) => `${(Math.round(p * 10000) / 100).toString()}¢`;

function Side({ title, rungs, kind, max }: { title: string; rungs: Rung[]; kind: "bid" | "ask"; max: number }) {
  return (
    <div className={`rungs rungs-${kind}`}>
      <div className="rungs-title">{title}</div>
      {rungs.length === 0 ? (
        <div className="muted small">none</div>
      ) : (
        <table className="ladder-table">
          <tbody>
            {rungs.map((r) => (
              <tr key={r.price} data-testid={`${kind}-${r.price}`}>
                <td className="price">{c(r.price)}</td>
                <td className="size">
                  <span className="depth" style={{ width: `${max ? (r.size / max) * 100 : 0}%` }} />
                  <span className="n">{r.size.toLocaleString()}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function LadderView({ name, ladder, depth }: { name: "YES" | "NO"; ladder: Ladder; depth: number }) {
  const asks = ladder.asks.slice(0, depth);
  const bids = ladder.bids.slice(0, depth);
  const max = Math.max(0, ...asks.map((r) => r.size), ...bids.map((r) => r.size));
  return (
    <section className="ladder" aria-label={`${name} ladder`}>
      <h3>{name}</h3>
      <Side title={`${name} asks`} rungs={[...asks].reverse()} kind="ask" max={max} />
      <Side title={`${name} bids`} rungs={bids} kind="bid" max={max} />
    </section>
  );
}

/** The book as two ladders. A book holds bids only; each side's asks are the other side's bids at 1 − price. */
export function Ladders({ book, depth = 10 }: { book: Pick<OrderBook, "yes" | "no">; depth?: number }) {
  const { yes, no } = ladders(book);
  return (
    <div className="ladders">
      <LadderView name="YES" ladder={yes} depth={depth} />
      <LadderView name="NO" ladder={no} depth={depth} />
    </div>
  );
}
