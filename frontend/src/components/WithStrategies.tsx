import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { listStrategies, type StrategyInfo } from "../client";
import { unwrap } from "../lib/api";
import { Empty, ErrorState, Loading } from "./States";

/** The registered strategies for a run form, with the loading, error and none-registered states of both forms. */
export function WithStrategies({ children }: { children: (strategies: StrategyInfo[]) => ReactNode }) {
  const strategies = useQuery({ queryKey: ["strategies"], queryFn: () => unwrap(listStrategies()), staleTime: 60_000 });
  if (strategies.isPending) return <Loading what="strategies" />;
  if (strategies.isError)
    return <ErrorState error={strategies.error} what="strategies" retry={() => void strategies.refetch()} />;
  if (strategies.data.length === 0) return <Empty>No strategy is registered.</Empty>;
  return <>{children(strategies.data)}</>;
}
