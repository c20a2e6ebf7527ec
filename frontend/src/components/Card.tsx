/** A metric card: its label, value (coloured by ``tone``) and, on hover, what it means. */
export function Card({ label, value, tone, hint }: { label: string; value: string; tone?: "pos" | "neg"; hint?: string }) {
  return (
    <div className="card" title={hint}>
      <div className="card-label">{label}</div>
      <div className={`card-value ${tone ?? ""}`}>{value}</div>
    </div>
  );
}

/** Gains green, losses red, zero and unknown plain. */
export const toneOf = (v: number | string | null | undefined): "pos" | "neg" | undefined =>
  v === null || v === undefined || Number(v) === 0 ? undefined : Number(v) < 0 ? "neg" : "pos";
