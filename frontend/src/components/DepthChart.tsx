import { useEffect, useRef } from "react";
import type { OrderBook } from "../client";
import { depthCurve, depthRange, type Depth } from "../lib/depth";

const BID = "#1f9d55";
const ASK = "#d64545";
const c = (p: number) => `${Math.round(p * 1000) / 10}¢`;

function draw(canvas: HTMLCanvasElement, d: Depth) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return;
  canvas.width = Math.round(w * ratio);
  canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const dark = window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
  const text = dark ? "#aab0b8" : "#5b616b";
  const pad = { l: 8, r: 8, t: 8, b: 20 };
  const [lo, hi] = depthRange(d);
  const x = (p: number) => pad.l + ((p - lo) / (hi - lo || 1)) * (w - pad.l - pad.r);
  const y = (q: number) => h - pad.b - (d.max ? (q / d.max) * (h - pad.t - pad.b) : 0);
  const base = y(0);

  // A side as a step area: full cumulative depth from its best price outwards.
  const side = (points: { price: number; cum: number }[], colour: string, edge: number) => {
    if (!points.length) return;
    ctx.beginPath();
    ctx.moveTo(x(points[0]!.price), base);
    let prev = 0;
    for (const p of points) {
      ctx.lineTo(x(p.price), y(prev));
      ctx.lineTo(x(p.price), y(p.cum));
      prev = p.cum;
    }
    ctx.lineTo(x(edge), y(prev));
    ctx.lineTo(x(edge), base);
    ctx.closePath();
    ctx.fillStyle = colour + "33";
    ctx.fill();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.stroke();
  };
  side(d.bids, BID, lo);
  side(d.asks, ASK, hi);

  ctx.fillStyle = text;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(c(lo), pad.l, h - pad.b + 4);
  ctx.textAlign = "right";
  ctx.fillText(c(hi), w - pad.r, h - pad.b + 4);
  if (d.bestBid !== null && d.bestAsk !== null) {
    ctx.textAlign = "center";
    ctx.fillText(`${c(d.bestBid)} / ${c(d.bestAsk)}`, x((d.bestBid + d.bestAsk) / 2), h - pad.b + 4);
  }
  ctx.textAlign = "right";
  ctx.fillText(d.max.toLocaleString(), w - pad.r, pad.t);
}

/** The YES side's depth: cumulative YES bids (green, left) and YES asks = 1 − NO bids (red, right). */
export function DepthChart({ book }: { book: Pick<OrderBook, "yes" | "no"> }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const d = depthCurve(book);
  const depth = useRef(d);
  depth.current = d;

  useEffect(() => {
    if (ref.current) draw(ref.current, d);
  });

  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || typeof ResizeObserver === "undefined") return;
    const ro = new ResizeObserver(() => draw(canvas, depth.current));
    ro.observe(canvas);
    return () => ro.disconnect();
  }, []);

  return (
    <canvas
      ref={ref}
      className="depth-chart"
      data-testid="depth-chart"
      data-bids={d.bids.length}
      data-asks={d.asks.length}
      data-best-bid={d.bestBid ?? ""}
      data-best-ask={d.bestAsk ?? ""}
      role="img"
      aria-label={`YES depth: ${d.bids.length} bid levels, ${d.asks.length} ask levels`}
    />
  );
}
