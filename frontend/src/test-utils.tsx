import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import {
  createMemoryHistory,
  createRootRoute,
  createRoute,
  createRouter,
  RouterProvider,
} from "@tanstack/react-router";
import { render } from "@testing-library/react";
import type { ReactElement } from "react";

/** ``ui`` at ``/`` inside a router (for its Links) and a query client, as the app renders pages. */
export function renderWithRouter(ui: ReactElement) {
  const rootRoute = createRootRoute();
  const index = createRoute({ getParentRoute: () => rootRoute, path: "/", component: () => ui });
  const market = createRoute({ getParentRoute: () => rootRoute, path: "/markets/$ticker", component: () => null });
  const router = createRouter({
    routeTree: rootRoute.addChildren([index, market]),
    history: createMemoryHistory({ initialEntries: ["/"] }),
  });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  return render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router as never} />
    </QueryClientProvider>,
  );
}
