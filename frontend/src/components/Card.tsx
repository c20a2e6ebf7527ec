import type { Grade } from "../lib/health";

/** A metric card: its label, value (coloured by ``tone``; ``mono`` for ids), on hover what it means, and a ``note``
 * to read with the value when it needs one. ``grade`` marks the card's edge (the health page's ok/warn/bad). */
export function Card({
  label,
  value,
  tone,
  grade,
  hint,
  note,
  mono = false,
}: {
  label: string;
  value: string;
  tone?: "pos" | "neg";
  grade?: Grade;
  hint?: string;
  note?: string | null;
  mono?: boolean;
}) {
  const valueClass = ["card-value", tone, mono && "card-id"].filter(Boolean).join(" ");
  return (
    <div className={grade ? `card grade-${grade}` : "card"} title={hint}>
      <div className="card-label">{label}</div>
      <div className={valueClass}>{value}</div>
      {note && <div className="card-note">{note}</div>}
    </div>
  );
}

/** Gains green, losses red, zero and unknown plain. */
export const toneOf = (v: number | string | null | undefined): "pos" | "neg" | undefined =>
  v === null || v === undefined || Number(v) === 0 ? undefined : Number(v) < 0 ? "neg" : "pos";
