import {
  BaselineSeries,
  createChart,
  LineSeries,
  LineType,
  type IChartApi,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useMemo, useRef } from "react";
import { chartLook, full, tickLabel, timeOf } from "../lib/chartTime";
import { drawdown } from "../lib/equity";

const dollars = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2 });

export type Point = { time: UTCTimestamp; value: number };

/** Equity samples as chart points: whole seconds, strictly increasing (a repeated second keeps its last value). */
export function pointsOf(ts: string[], values: number[]): Point[] {
  const out: Point[] = [];
  for (let i = 0; i < ts.length && i < values.length; i++) {
    const t = Math.floor(new Date(ts[i]!).getTime() / 1000);
    const v = values[i]!;
    if (!Number.isFinite(t) || !Number.isFinite(v)) continue;
    const last = out[out.length - 1];
    if (last && t <= last.time) {
      if (t === last.time) last.value = v;
      continue;
    }
    out.push({ time: t as UTCTimestamp, value: v });
  }
  return out;
}

type Series = { set: (points: Point[]) => void; update: (point: Point) => void };

/** Whether ``next`` is ``prev`` with points appended (its last point possibly revised): then a live chart appends
 * with ``update()`` instead of redrawing everything. */
export function extendsSeries(prev: Point[], next: Point[]): boolean {
  if (prev.length === 0 || next.length < prev.length) return false;
  const i = prev.length - 1;
  return next[0]!.time === prev[0]!.time && next[i]!.time === prev[i]!.time && (i === 0 || next[i - 1]!.value === prev[i - 1]!.value);
}

function useChart(box: React.RefObject<HTMLDivElement>, make: (c: IChartApi) => Series, points: Point[]) {
  const series = useRef<Series | null>(null);
  const chart = useRef<IChartApi | null>(null);
  const shown = useRef<Point[]>([]);
  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, {
      autoSize: true,
      ...chartLook(),
      localization: { timeFormatter: (t: Time) => full.format(timeOf(t)) },
      timeScale: {
        timeVisible: true,
        secondsVisible: false,
        tickMarkFormatter: tickLabel,
      },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.1 } },
    });
    chart.current = c;
    series.current = make(c);
    shown.current = [];
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  useEffect(() => {
    const s = series.current;
    if (!s) return;
    if (extendsSeries(shown.current, points)) {
      // A live session's new samples: appended in place (the view keeps its zoom and scroll).
      for (const p of points.slice(shown.current.length - 1)) s.update(p);
    } else {
      s.set(points);
      chart.current?.timeScale().fitContent();
    }
    shown.current = points;
  }, [points]);
}

const priceFormat = { type: "custom" as const, minMove: 0.01, formatter: (p: number) => dollars.format(p) };

/** The account's equity over the run, in dollars: a step line (each sample holds until the next). */
export function EquityChart({ ts, equity }: { ts: string[]; equity: number[] }) {
  const box = useRef<HTMLDivElement>(null);
  const points = useMemo(() => pointsOf(ts, equity), [ts, equity]);
  useChart(
    box,
    (c) => {
      const s = c.addSeries(LineSeries, { color: "#2f6fde", lineWidth: 2, lineType: LineType.WithSteps, priceFormat });
      return { set: (p) => s.setData(p), update: (p) => s.update(p) };
    },
    points,
  );
  return (
    <div
      className="chart chart-equity"
      ref={box}
      data-testid="equity-chart"
      data-points={points.length}
      role="img"
      aria-label="Equity curve in dollars"
    />
  );
}

/** The underwater curve: how far equity stands below its previous peak, in dollars (0 at a new high). */
export function DrawdownChart({ ts, equity }: { ts: string[]; equity: number[] }) {
  const box = useRef<HTMLDivElement>(null);
  const points = useMemo(() => pointsOf(ts, drawdown(equity).dollars), [ts, equity]);
  useChart(
    box,
    (c) => {
      // Filled between zero (the previous peak) and the curve: the depth under water.
      const s = c.addSeries(BaselineSeries, {
        baseValue: { type: "price", price: 0 },
        topLineColor: "#d64545",
        topFillColor1: "rgba(214, 69, 69, 0)",
        topFillColor2: "rgba(214, 69, 69, 0)",
        bottomLineColor: "#d64545",
        bottomFillColor1: "rgba(214, 69, 69, 0.15)",
        bottomFillColor2: "rgba(214, 69, 69, 0.4)",
        lineWidth: 1,
        lineType: LineType.WithSteps,
        priceFormat,
      });
      return { set: (p) => s.setData(p), update: (p) => s.update(p) };
    },
    points,
  );
  return (
    <div
      className="chart chart-drawdown"
      ref={box}
      data-testid="drawdown-chart"
      data-points={points.length}
      data-min={points.reduce((m, p) => Math.min(m, p.value), 0)}
      role="img"
      aria-label="Drawdown (underwater) curve in dollars"
    />
  );
}
