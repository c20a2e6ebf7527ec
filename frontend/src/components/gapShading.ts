// Feed gaps painted as bands behind the candles: a series primitive on the (transparent) gap series, whose
// points put every gap bucket on the time scale — a gap without candles still has room on the chart. One
// band per run of buckets, from half a bar before its first bucket to half a bar after its last.
import type {
  IChartApi,
  IPrimitivePaneRenderer,
  IPrimitivePaneView,
  ISeriesPrimitive,
  Logical,
  SeriesAttachedParameter,
  Time,
  UTCTimestamp,
} from "lightweight-charts";
import type { Shade } from "../lib/gaps";

type Target = Parameters<IPrimitivePaneRenderer["draw"]>[0];

export class GapShading implements ISeriesPrimitive<Time> {
  private chart: IChartApi | null = null;
  private requestUpdate: (() => void) | null = null;
  private bands: Shade[] = [];
  private readonly view: IPrimitivePaneView;

  constructor(private readonly color: string) {
    const renderer: IPrimitivePaneRenderer = {
      draw: () => undefined,
      drawBackground: (target: Target) => this.paint(target),
    };
    this.view = { zOrder: () => "bottom", renderer: () => renderer };
  }

  attached({ chart, requestUpdate }: SeriesAttachedParameter<Time>): void {
    this.chart = chart as IChartApi;
    this.requestUpdate = requestUpdate;
  }

  detached(): void {
    this.chart = null;
    this.requestUpdate = null;
  }

  setBands(bands: Shade[]): void {
    this.bands = bands;
    this.requestUpdate?.();
  }

  paneViews(): readonly IPrimitivePaneView[] {
    return [this.view];
  }

  private paint(target: Target): void {
    const chart = this.chart;
    if (!chart || !this.bands.length) return;
    const ts = chart.timeScale();
    target.useMediaCoordinateSpace(({ context, mediaSize }) => {
      context.fillStyle = this.color;
      for (const b of this.bands) {
        const x1 = ts.timeToCoordinate(b.from as UTCTimestamp);
        const x2 = ts.timeToCoordinate(b.to as UTCTimestamp);
        if (x1 === null || x2 === null) continue;
        const l = ts.coordinateToLogical(x1);
        const next = l === null ? null : ts.logicalToCoordinate((l + 1) as Logical);
        const half = next === null ? 3 : Math.max(1, (next - x1) / 2);
        const left = Math.max(0, x1 - half);
        const right = Math.min(mediaSize.width, x2 + half);
        if (right > left) context.fillRect(left, 0, right - left, mediaSize.height);
      }
    });
  }
}
