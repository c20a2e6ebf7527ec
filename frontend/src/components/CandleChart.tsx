import {
  CandlestickSeries,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  TickMarkType,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef } from "react";
import { chartLook, day, full, hm, timeOf } from "../lib/chartTime";
import { markPainted } from "../lib/marks";
import type { Bar, VolumeBar } from "../lib/candles";
import { runsOf } from "../lib/gaps";
import { GapShading } from "./gapShading";
import type { TradeMark } from "../lib/markers";

// A daily bucket is a UTC day: labelled by its UTC date, not by the local time of its UTC midnight.
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeZone: "UTC" });
const utcDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

const UP = "#1f9d55";
const DOWN = "#d64545";
const GAP = "rgba(230, 140, 30, 0.22)";

function chartBar(b: Bar) {
  return { ...b, time: b.time as UTCTimestamp };
}

function volumeBar(v: VolumeBar) {
  return { time: v.time as UTCTimestamp, value: v.value, color: v.up ? "rgba(31,157,85,0.45)" : "rgba(214,69,69,0.45)" };
}

export type CandleChartProps = {
  bars: Bar[];
  volumes: VolumeBar[];
  live: Bar | null;
  liveVolume: VolumeBar | null;
  liveCount: number;
  /** Bucket starts inside feed gaps, shaded behind the candles. */
  gapTimes: number[];
  marks?: TradeMark[];
  /** Bucket size in seconds: daily buckets are labelled by their UTC date. */
  seconds: number;
  label: string;
};

/** Candles of implied probability with their volume below and feed gaps shaded. ``bars`` and ``volumes`` are
 * the history (set whole, so an interval change redraws everything); ``live`` the newest bar as live snapshots
 * move it (applied with update(), which never rewrites older bars). Times in the user's zone. */
export function CandleChart({ bars, volumes, live, liveVolume, liveCount, gapTimes, marks = [], seconds, label }: CandleChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const series = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const volume = useRef<ISeriesApi<"Histogram"> | null>(null);
  const gaps = useRef<ISeriesApi<"Histogram"> | null>(null);
  const markers = useRef<ISeriesMarkersPluginApi<Time> | null>(null);
  const bands = useRef<GapShading | null>(null);
  const lastTime = useRef<number>(-Infinity);
  const lastVolumeTime = useRef<number>(-Infinity);
  const daily = useRef(seconds >= 86400);
  daily.current = seconds >= 86400;

  useEffect(() => {
    if (!box.current) return;
    const c = createChart(box.current, {
      autoSize: true,
      ...chartLook(),
      localization: { timeFormatter: (t: Time) => (daily.current ? dateOnly : full).format(timeOf(t)) },
      timeScale: {
        timeVisible: true,
        barSpacing: 10,
        rightOffset: 4,
        secondsVisible: false,
        tickMarkFormatter: (t: Time, type: TickMarkType) =>
          daily.current
            ? utcDay.format(timeOf(t))
            : type === TickMarkType.Time || type === TickMarkType.TimeWithSeconds
              ? hm.format(timeOf(t))
              : day.format(timeOf(t)),
      },
      rightPriceScale: { scaleMargins: { top: 0.08, bottom: 0.28 } },
    });
    // Gaps: invisible points on a scale of their own put each gap bucket on the time scale; the primitive
    // paints the bands behind everything.
    const g = c.addSeries(HistogramSeries, {
      priceScaleId: "gaps",
      color: "rgba(0, 0, 0, 0)",
      priceLineVisible: false,
      lastValueVisible: false,
      base: 0,
    });
    c.priceScale("gaps").applyOptions({ scaleMargins: { top: 0, bottom: 0 }, visible: false });
    const v = c.addSeries(HistogramSeries, {
      priceScaleId: "volume",
      priceLineVisible: false,
      lastValueVisible: false,
      priceFormat: { type: "volume" },
    });
    c.priceScale("volume").applyOptions({ scaleMargins: { top: 0.78, bottom: 0 }, visible: false });
    const s = c.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
      borderVisible: false,
      priceFormat: { type: "custom", minMove: 0.0005, formatter: (p: number) => `${(p * 100).toFixed(2)}%` },
    });
    const shading = new GapShading(GAP);
    g.attachPrimitive(shading);
    chart.current = c;
    series.current = s;
    bands.current = shading;
    volume.current = v;
    gaps.current = g;
    markers.current = createSeriesMarkers(s, []);
    return () => {
      c.remove();
      chart.current = null;
      series.current = null;
      volume.current = null;
      gaps.current = null;
      markers.current = null;
      bands.current = null;
    };
  }, []);

  useEffect(() => {
    if (!series.current || !volume.current) return;
    series.current.setData(bars.map(chartBar));
    volume.current.setData(volumes.map(volumeBar));
    lastTime.current = bars.length ? bars[bars.length - 1]!.time : -Infinity;
    lastVolumeTime.current = volumes.length ? volumes[volumes.length - 1]!.time : -Infinity;
    chart.current?.timeScale().scrollToRealTime();
    if (bars.length) markPainted("ka:candles-rendered", { candles: bars.length });
  }, [bars, volumes]);

  useEffect(() => {
    gaps.current?.setData(gapTimes.map((t) => ({ time: t as UTCTimestamp, value: 1 })));
    bands.current?.setBands(runsOf(gapTimes, seconds));
  }, [gapTimes, seconds]);

  useEffect(() => {
    markers.current?.setMarkers(
      marks.map((m) => ({
        time: m.time as UTCTimestamp,
        position: m.kind === "entry" ? "belowBar" : "aboveBar",
        shape: m.kind === "entry" ? "arrowUp" : "arrowDown",
        color: m.kind === "entry" ? "#2563eb" : "#7c3aed",
        text: m.text,
      })),
    );
  }, [marks]);

  useEffect(() => {
    if (!series.current || !live || live.time < lastTime.current) return;
    series.current.update(chartBar(live));
    lastTime.current = live.time;
  }, [live]);

  useEffect(() => {
    if (!volume.current || !liveVolume || liveVolume.time < lastVolumeTime.current) return;
    volume.current.update(volumeBar(liveVolume));
    lastVolumeTime.current = liveVolume.time;
  }, [liveVolume]);

  return (
    <div
      className="chart"
      ref={box}
      data-testid="candle-chart"
      data-bars={bars.length}
      data-volumes={volumes.length}
      data-gap-buckets={gapTimes.length}
      data-marks={marks.length}
      data-live-updates={liveCount}
      data-last-close={live?.close ?? bars[bars.length - 1]?.close ?? ""}
      aria-label={label}
      role="img"
    />
  );
}
