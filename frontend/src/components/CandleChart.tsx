import {
  CandlestickSeries,
  createChart,
  TickMarkType,
  type IChartApi,
  type ISeriesApi,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import type { Bar } from "../lib/candles";

const timeOf = (t: Time): Date => new Date((typeof t === "number" ? t : 0) * 1000);
const hm = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function chartBar(b: Bar) {
  return { ...b, time: b.time as UTCTimestamp };
}

/** 1-minute candles of implied probability. ``bars`` is the history (set whole); ``live`` the newest bar as live
 * snapshots move it (applied with update(), which never rewrites older bars). Times in the user's zone. */
export function CandleChart({ bars, live, liveCount }: { bars: Bar[]; live: Bar | null; liveCount: number }) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const lastTime = useRef<number>(-Infinity);

  useEffect(() => {
    if (!box.current) return;
    const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
    const c = createChart(box.current, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: dark ? "#d0d4da" : "#30343a", attributionLogo: false },
      grid: { vertLines: { color: dark ? "#2a2e35" : "#eef0f3" }, horzLines: { color: dark ? "#2a2e35" : "#eef0f3" } },
      localization: { timeFormatter: (t: Time) => full.format(timeOf(t)) },
      timeScale: {
        timeVisible: true,
        barSpacing: 10,
        rightOffset: 4,
        secondsVisible: false,
        tickMarkFormatter: (t: Time, type: TickMarkType) =>
          type === TickMarkType.Time || type === TickMarkType.TimeWithSeconds ? hm.format(timeOf(t)) : day.format(timeOf(t)),
      },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.1 } },
    });
    const s = c.addSeries(CandlestickSeries, {
      upColor: "#1f9d55",
      downColor: "#d64545",
      wickUpColor: "#1f9d55",
      wickDownColor: "#d64545",
      borderVisible: false,
      priceFormat: { type: "custom", minMove: 0.0005, formatter: (p: number) => `${(p * 100).toFixed(2)}%` },
    });
    chart.current = c;
    series.current = s;
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
    };
  }, []);

  useEffect(() => {
    if (!series.current) return;
    series.current.setData(bars.map(chartBar));
    lastTime.current = bars.length ? bars[bars.length - 1]!.time : -Infinity;
    chart.current?.timeScale().scrollToRealTime();
  }, [bars]);

  useEffect(() => {
    if (!series.current || !live || live.time < lastTime.current) return;
    series.current.update(chartBar(live));
    lastTime.current = live.time;
  }, [live]);

  return (
    <div
      className="chart"
      ref={box}
      data-testid="candle-chart"
      data-bars={bars.length}
      data-live-updates={liveCount}
      data-last-close={live?.close ?? bars[bars.length - 1]?.close ?? ""}
      aria-label="1-minute candles of implied probability"
      role="img"
    />
  );
}
