import { createChart, LineSeries, LineType, TickMarkType, type IChartApi, type ISeriesApi, type Time, type UTCTimestamp } from "lightweight-charts";
import { useEffect, useRef } from "react";
import { chartLook, full, tickLabel, timeOf } from "../lib/chartTime";
import { elapsedLabel, type Align, type OverlayPoint } from "../lib/compare";

export const COLORS = ["#2f6fde", "#d64545", "#1f9d55", "#b7791f", "#805ad5", "#dd6b20", "#319795", "#718096"];
const dollars = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", minimumFractionDigits: 2 });
const secondsOf = (t: Time): number => (typeof t === "number" ? t : 0);

/** Several runs' P&L curves on one chart, one colour each (COLORS, in the runs' order). */
export function OverlayChart({ series, align }: { series: { id: string; points: OverlayPoint[] }[]; align: Align }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const lines = useRef<ISeriesApi<"Line">[]>([]);
  useEffect(() => {
    if (!box.current) return;
    const label = (t: Time, type: TickMarkType) => (align === "elapsed" ? elapsedLabel(secondsOf(t)) : tickLabel(t, type));
    const c = createChart(box.current, {
      autoSize: true,
      ...chartLook(),
      localization: {
        timeFormatter: (t: Time) => (align === "elapsed" ? elapsedLabel(secondsOf(t)) : full.format(timeOf(t))),
      },
      timeScale: { timeVisible: true, secondsVisible: true, tickMarkFormatter: label },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.1 } },
    });
    chart.current = c;
    return () => {
      c.remove();
      chart.current = null;
      lines.current = [];
    };
  }, [align]);
  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    for (const l of lines.current) c.removeSeries(l);
    lines.current = series.map((s, i) => {
      const l = c.addSeries(LineSeries, {
        color: COLORS[i % COLORS.length],
        lineWidth: 2,
        lineType: LineType.WithSteps,
        priceFormat: { type: "custom", minMove: 0.01, formatter: (p: number) => dollars.format(p) },
        title: s.id.slice(0, 8),
      });
      l.setData(s.points.map((p) => ({ time: p.time as UTCTimestamp, value: p.value })));
      return l;
    });
    c.timeScale().fitContent();
  }, [series, align]);
  return (
    <div
      className="chart chart-equity"
      ref={box}
      data-testid="overlay-chart"
      data-series={series.length}
      data-points={series.map((s) => s.points.length).join(",")}
      role="img"
      aria-label="P&L curves of the compared runs, in dollars"
    />
  );
}
