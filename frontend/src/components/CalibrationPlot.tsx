import { calibrationError, type Calibration } from "../lib/calibration";
import { Empty } from "./States";

const SIZE = 300;
const PAD = 36;
const x = (p: number) => PAD + p * (SIZE - 2 * PAD);
const y = (p: number) => SIZE - PAD - p * (SIZE - 2 * PAD);
const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

/** Price paid (the forecast of the side bought winning) against how often that side won, per price bucket; the
 * diagonal is perfect calibration, a dot's area its contracts. */
export function CalibrationPlot({ calibration }: { calibration: Calibration }) {
  const { buckets, brier } = calibration;
  if (buckets.length === 0) {
    return (
      <div data-testid="calibration" data-buckets={0}>
        <Empty>No calibration: none of the markets this run traded has settled yet (it needs their results).</Empty>
      </div>
    );
  }
  const most = Math.max(...buckets.map((b) => b.contracts));
  const err = calibrationError(buckets);
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div className="calibration" data-testid="calibration" data-buckets={buckets.length}>
      <svg viewBox={`0 0 ${SIZE} ${SIZE}`} role="img" aria-label="Calibration: price paid against how often the side won">
        {ticks.map((t) => (
          <g key={t} className="grid">
            <line x1={x(t)} y1={y(0)} x2={x(t)} y2={y(1)} />
            <line x1={x(0)} y1={y(t)} x2={x(1)} y2={y(t)} />
            <text x={x(t)} y={y(0) + 14} textAnchor="middle">
              {t * 100}¢
            </text>
            <text x={x(0) - 6} y={y(t) + 4} textAnchor="end">
              {t * 100}%
            </text>
          </g>
        ))}
        <line className="diagonal" x1={x(0)} y1={y(0)} x2={x(1)} y2={y(1)} />
        <polyline className="curve" points={buckets.map((b) => `${x(b.meanPrice)},${y(b.winRate)}`).join(" ")} />
        {buckets.map((b) => (
          <circle key={b.lo} className="dot" cx={x(b.meanPrice)} cy={y(b.winRate)} r={3 + 7 * Math.sqrt(b.contracts / most)}>
            <title>
              {`${b.lo.toFixed(1)}–${b.hi.toFixed(1)}: paid ${pct(b.meanPrice)} on average, won ${pct(b.winRate)} (${b.trades} trades, ${b.contracts} contracts)`}
            </title>
          </circle>
        ))}
        <text x={SIZE / 2} y={SIZE - 4} textAnchor="middle" className="axis">
          price paid
        </text>
        <text x={x(0)} y={y(1) - 14} textAnchor="middle" className="axis">
          side won
        </text>
      </svg>
      <div>
        <table className="data">
          <thead>
            <tr>
              <th>Price bucket</th>
              <th className="num">Trades</th>
              <th className="num">Contracts</th>
              <th className="num">Avg price</th>
              <th className="num">Won</th>
            </tr>
          </thead>
          <tbody>
            {buckets.map((b) => (
              <tr key={b.lo}>
                <td>
                  {Math.round(b.lo * 100)}–{Math.round(b.hi * 100)}¢
                </td>
                <td className="num">{b.trades}</td>
                <td className="num">{b.contracts.toLocaleString()}</td>
                <td className="num">{pct(b.meanPrice)}</td>
                <td className="num">{pct(b.winRate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted small">
          Brier score {brier === null ? "—" : brier.toFixed(4)} (0 is perfect; always paying 50¢ scores 0.25)
          {err !== null && ` · mean calibration error ${(err * 100).toFixed(1)} points`}. Settled markets only, weighted by
          contracts.
        </p>
      </div>
    </div>
  );
}
