import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { PaperSessionCreate, StrategyInfo } from "../client";
import { ApiError } from "../lib/api";
import { PaperSessionForm } from "./PaperSessionForm";

const STRATEGIES: StrategyInfo[] = [
  {
    name: "buy_and_hold",
    version: "1",
    description: "Baseline.",
    vectorised: true,
    params_schema: {
      type: "object",
      properties: {
        size: { type: "number", default: 10, exclusiveMinimum: 0, title: "Size" },
        side: { type: "string", enum: ["yes", "no"], default: "yes", title: "Side" },
      },
    },
  },
];

function setup(submit: (body: PaperSessionCreate) => Promise<{ id: string }>) {
  const onCreated = vi.fn();
  render(<PaperSessionForm strategies={STRATEGIES} submit={submit} onCreated={onCreated} />);
  return { onCreated, user: userEvent.setup() };
}

describe("PaperSessionForm", () => {
  it("uses the strategy's generated fields and sends the session's body, money as a decimal string", async () => {
    const submit = vi.fn(async (_b: PaperSessionCreate) => ({ id: "s-1" }));
    const { user, onCreated } = setup(submit);
    const size = screen.getByLabelText("Size");
    await user.clear(size);
    await user.type(size, "3");
    await user.selectOptions(screen.getByLabelText("Side"), "no");
    // A session must name its markets: no "any market" choice, and nothing is sent without one.
    expect([...(screen.getByLabelText("Filter by") as HTMLSelectElement).options].map((o) => o.value)).toEqual(["category", "tickers"]);
    await user.click(screen.getByRole("button", { name: "Start session" }));
    expect(await screen.findByText("Enter one or more tickers.")).toBeInTheDocument();
    expect(submit).not.toHaveBeenCalled();
    await user.type(screen.getByLabelText("Market filter"), "KXA-1,KXB-2");
    const capital = screen.getByLabelText("Initial capital ($)");
    await user.clear(capital);
    await user.type(capital, "250.50");
    await user.type(screen.getByLabelText("Session name"), " trial ");
    await user.selectOptions(screen.getByLabelText("After runner downtime"), "reset");
    await user.click(screen.getByRole("button", { name: "Start session" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalledWith("s-1"));
    expect(submit.mock.calls[0]![0]).toEqual({
      strategy: "buy_and_hold",
      params: { size: 3, side: "no" },
      market_filter: { tickers: ["KXA-1", "KXB-2"] },
      initial_capital: "250.50",
      restart_policy: "reset",
      name: "trial",
      equity_interval_seconds: 60,
    });
  });

  it("shows the API's field errors next to the session's own fields and the parameters", async () => {
    const submit = vi.fn(async () => {
      throw new ApiError(422, "invalid", [
        { field: "body.initial_capital", message: "the capital is in dollars with at most 4 decimal places" },
        { field: "body.params.size", message: "Input should be greater than 0" },
        { field: "body.market_filter", message: "no recorded market matches this selection" },
        { field: "body.contract_step", message: "not shown here" },
      ]);
    });
    const { user } = setup(submit);
    await user.type(screen.getByLabelText("Market filter"), "KXNONE");
    await user.click(screen.getByRole("button", { name: "Start session" }));
    const capitalError = await screen.findByText("the capital is in dollars with at most 4 decimal places");
    const capital = screen.getByLabelText("Initial capital ($)");
    expect(capitalError.closest(".field")).toBe(capital.closest(".field"));
    expect(capital).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText("Input should be greater than 0").closest(".field")).toBe(screen.getByLabelText("Size").closest(".field"));
    expect(screen.getByText("no recorded market matches this selection").closest(".field")).toBe(
      screen.getByLabelText("Market filter").closest(".field"),
    );
    expect(screen.getByText("contract_step: not shown here")).toBeInTheDocument();
  });
});
