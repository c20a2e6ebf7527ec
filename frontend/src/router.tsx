import { createRootRoute, createRoute, createRouter, lazyRouteComponent } from "@tanstack/react-router";
import { Layout } from "./components/Layout";
import { parseMarketsSearch } from "./lib/marketsSearch";
import { MarketsPage } from "./pages/MarketsPage";
import { NotFound } from "./pages/NotFound";

const rootRoute = createRootRoute({ component: Layout, notFoundComponent: () => <NotFound /> });

// The markets view (search, filters, sort) is in the URL's search params: a link reproduces it.
const marketsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/",
  component: MarketsPage,
  validateSearch: parseMarketsSearch,
});

// The market page carries the chart library: its own chunk, loaded when a market is opened.
const marketRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/markets/$ticker",
  // ?backtest=<id>: that run's entries and exits marked on the chart.
  validateSearch: (s: Record<string, unknown>): { backtest?: string } =>
    typeof s.backtest === "string" && s.backtest ? { backtest: s.backtest } : {},
  component: lazyRouteComponent(() => import("./pages/MarketPage"), "MarketPage"),
});

const sessionsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/paper",
  component: lazyRouteComponent(() => import("./pages/SessionsPage"), "SessionsPage"),
});

const sessionRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/paper/$sessionId",
  component: lazyRouteComponent(() => import("./pages/SessionPage"), "SessionPage"),
});

// Backtests: the list with the run form, and one run (its charts carry the chart library).
const backtestsRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/backtests",
  component: lazyRouteComponent(() => import("./pages/BacktestsPage"), "BacktestsPage"),
});

// Several runs side by side: ?ids=a,b,c (declared before the one-run route; a static segment wins anyway).
const backtestCompareRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/backtests/compare",
  validateSearch: (search: Record<string, unknown>): { ids?: string } =>
    typeof search.ids === "string" ? { ids: search.ids } : {},
  component: lazyRouteComponent(() => import("./pages/BacktestComparePage"), "BacktestComparePage"),
});

const backtestRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/backtests/$backtestId",
  component: lazyRouteComponent(() => import("./pages/BacktestPage"), "BacktestPage"),
});

// Recorder health: polled every few seconds.
const healthRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/health",
  component: lazyRouteComponent(() => import("./pages/HealthPage"), "HealthPage"),
});

const routeTree = rootRoute.addChildren([
  marketsRoute,
  marketRoute,
  backtestsRoute,
  backtestCompareRoute,
  backtestRoute,
  sessionsRoute,
  sessionRoute,
  healthRoute,
]);

export const router = createRouter({ routeTree, defaultPreload: "intent" });

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
