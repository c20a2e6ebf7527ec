import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { getReadiness, getRecorderStatus } from "../client";
import { HealthView } from "../components/HealthView";
import { ErrorState, Loading } from "../components/States";
import { ApiError, unwrap } from "../lib/api";
import { localTime, utcTitle } from "../lib/format";
import { readinessFrom, type ReadinessView } from "../lib/health";

/** Every few seconds: a heartbeat is written every 2 s, so this shows a stalled recorder within one refresh. */
export const HEALTH_REFRESH_MS = 3000;

/** /ready answers 200 when ready and a 503 problem body (with the same checks) when not: both are answers here. */
async function readiness(): Promise<ReadinessView> {
  let result: Awaited<ReturnType<typeof getReadiness>>;
  try {
    result = await getReadiness();
  } catch (e) {
    throw new ApiError(null, e instanceof Error ? e.message : "the API is unreachable");
  }
  const view = readinessFrom(result.response?.status ?? 0, result.data ?? result.error);
  if (!view) throw new ApiError(result.response?.status ?? null, `HTTP ${result.response?.status ?? "error"}`);
  return view;
}

export function HealthPage() {
  const status = useQuery({
    queryKey: ["recorder-status"],
    queryFn: () => unwrap(getRecorderStatus()),
    refetchInterval: HEALTH_REFRESH_MS,
    placeholderData: keepPreviousData,
    retry: false,
  });
  const ready = useQuery({
    queryKey: ["readiness"],
    queryFn: readiness,
    refetchInterval: HEALTH_REFRESH_MS,
    retry: false,
  });
  // Heartbeat ages tick between polls.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(id);
  }, []);

  const apiDown = ready.error instanceof ApiError && ready.error.status === null;
  const statusError = status.isError ? (status.error instanceof Error ? status.error.message : String(status.error)) : null;
  const updated = status.dataUpdatedAt ? new Date(status.dataUpdatedAt).toISOString() : null;

  return (
    <section>
      <div className="page-head">
        <h1>Recorder health</h1>
        <span className="muted small">
          {updated ? (
            <>
              Updated <time dateTime={updated} title={utcTitle(updated)}>{localTime(updated)}</time>; refreshes every{" "}
              {HEALTH_REFRESH_MS / 1000} s
            </>
          ) : (
            `Refreshes every ${HEALTH_REFRESH_MS / 1000} s`
          )}
        </span>
      </div>
      {status.isPending && ready.isPending ? (
        <Loading what="recorder status" />
      ) : !status.data && !ready.data && status.isError && ready.isError ? (
        <ErrorState error={ready.error} what="recorder status" retry={() => void (status.refetch(), ready.refetch())} />
      ) : (
        <HealthView
          status={status.data}
          fetchedAt={status.dataUpdatedAt || now}
          now={now}
          readiness={ready.data ?? null}
          statusError={statusError}
          apiDown={apiDown}
        />
      )}
    </section>
  );
}
