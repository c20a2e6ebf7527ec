import type { ReactNode } from "react";
import { ApiError } from "../lib/api";
import { localTime, utcTitle } from "../lib/format";

export function Loading({ what }: { what: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>;
}

export function ErrorState({ error, what, retry }: { error: unknown; what: string; retry?: () => void }) {
  const unreachable = error instanceof ApiError && error.status === null;
  const detail = error instanceof Error ? error.message : String(error);
  return (
    <div className="state state-error" role="alert">
      <strong>Could not load {what}.</strong>{" "}
      {unreachable ? "The API is unreachable; this retries by itself." : detail}
      {retry && (
        <button type="button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

/** A time in the user's zone, UTC on hover. */
export function Time({ iso, short = false }: { iso: string | null | undefined; short?: boolean }) {
  if (!iso) return <span>—</span>;
  return (
    <time dateTime={iso} title={utcTitle(iso)}>
      {localTime(iso, short)}
    </time>
  );
}
