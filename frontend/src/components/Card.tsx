/** A metric card: its label, value (coloured by ``tone``), on hover what it means, and a ``note`` to read with
 * the value when it needs one. */
export function Card({
  label,
  value,
  tone,
  hint,
  note,
}: {
  label: string;
  value: string;
  tone?: "pos" | "neg";
  hint?: string;
  note?: string | null;
}) {
  return (
    <div className="card" title={hint}>
      <div className="card-label">{label}</div>
      <div className={`card-value ${tone ?? ""}`}>{value}</div>
      {note && <div className="card-note">{note}</div>}
    </div>
  );
}

/** Gains green, losses red, zero and unknown plain. */
export const toneOf = (v: number | string | null | undefined): "pos" | "neg" | undefined =>
  v === null || v === undefined || Number(v) === 0 ? undefined : Number(v) < 0 ? "neg" : "pos";
