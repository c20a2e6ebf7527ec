import type { Trade } from "../client";
import { cents, count } from "../lib/format";
import { Time } from "./States";

/** Trades, newest first: time, taker side, YES price, size. */
export function TradesTape({ trades }: { trades: Trade[] }) {
  return (
    <div className="tape table-wrap" data-testid="trades-tape" data-rows={trades.length}>
      <table className="data tape-table">
        <thead>
          <tr>
            <th>Time</th>
            <th>Taker</th>
            <th className="num">YES price</th>
            <th className="num">Size</th>
          </tr>
        </thead>
        <tbody>
          {trades.map((t) => (
            <tr key={t.trade_id} className={t.taker_side ? `taker-${t.taker_side}` : undefined}>
              <td>
                <Time iso={t.ts} short />
              </td>
              <td>{t.taker_side ? t.taker_side.toUpperCase() : "—"}</td>
              <td className="num">{cents(t.yes_price)}</td>
              <td className="num">{count(t.count)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
