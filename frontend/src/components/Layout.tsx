import { Link, Outlet } from "@tanstack/react-router";
import { API_BASE } from "../lib/api";
import { TIME_ZONE } from "../lib/format";
import { ApiBanner } from "./ApiBanner";

export function Layout() {
  return (
    <div className="app">
      <header className="topbar">
        <Link to="/" className="brand">
          Kalshi Analytics
        </Link>
        <nav aria-label="Main">
          <Link to="/" activeOptions={{ exact: true }} activeProps={{ className: "active" }}>
            Markets
          </Link>
          <Link to="/backtests" activeProps={{ className: "active" }}>
            Backtests
          </Link>
          <Link to="/paper" activeProps={{ className: "active" }}>
            Paper trading
          </Link>
          <Link to="/health" activeProps={{ className: "active" }}>
            Recorder health
          </Link>
          <a href={`${API_BASE}/api/v1/docs`}>API docs</a>
        </nav>
        <span className="tz" title="Times are shown in this time zone; hover a time for UTC">
          {TIME_ZONE}
        </span>
      </header>
      <ApiBanner />
      <main>
        <Outlet />
      </main>
    </div>
  );
}
