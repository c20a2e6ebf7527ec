import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { getHealth } from "../client";
import { unwrap } from "../lib/api";

/** A banner while the API cannot be reached; it polls /health and, when the API is back, refetches everything. */
export function ApiBanner() {
  const queryClient = useQueryClient();
  const health = useQuery({
    queryKey: ["health"],
    queryFn: () => unwrap(getHealth()),
    retry: false,
    refetchInterval: (q) => (q.state.status === "error" ? 2000 : 5000),
    refetchIntervalInBackground: false,
  });
  const wasDown = useRef(false);
  const down = health.isError;
  useEffect(() => {
    if (down) wasDown.current = true;
    else if (wasDown.current && health.isSuccess) {
      wasDown.current = false;
      void queryClient.invalidateQueries({ predicate: (q) => q.queryKey[0] !== "health" });
    }
  }, [down, health.isSuccess, queryClient]);
  if (!down) return null;
  return (
    <div className="banner" role="alert">
      The API is unreachable — retrying every 2 s. What you see may be out of date.
    </div>
  );
}
