import { Link } from "@tanstack/react-router";

export function NotFound({ what = "page" }: { what?: string }) {
  return (
    <section className="not-found" data-testid="not-found">
      <h1>Not found</h1>
      <p>There is no {what} here.</p>
      <p>
        <Link to="/">Back to the markets</Link>
      </p>
    </section>
  );
}
