import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { BacktestCreate, StrategyInfo } from "../client";
import { ApiError } from "../lib/api";
import { BacktestForm } from "./BacktestForm";

// Two schemas as the API gives them (pydantic's JSON schema): every kind of field the form draws.
const STRATEGIES: StrategyInfo[] = [
  {
    name: "momentum",
    version: "1",
    description: "Trend following.",
    vectorised: true,
    params_schema: {
      type: "object",
      additionalProperties: false,
      properties: {
        lookback: { type: "integer", default: 10, minimum: 1, maximum: 10000, title: "Lookback", description: "Snapshots over which the move is measured." },
        threshold: { type: "number", default: 0.1, exclusiveMinimum: 0, exclusiveMaximum: 1, title: "Threshold" },
        side: { type: "string", enum: ["yes", "no"], default: "no", title: "Side" },
        exit_at_close: { type: "boolean", default: true, title: "Exit At Close" },
        label: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "Label" },
      },
    },
  },
  {
    name: "buy_and_hold",
    version: "2",
    description: "Baseline.",
    vectorised: true,
    params_schema: { type: "object", properties: { size: { type: "number", default: 10, exclusiveMinimum: 0, title: "Size" } } },
  },
];

function setup(submit: (body: BacktestCreate) => Promise<{ id: string }>) {
  const onCreated = vi.fn();
  render(<BacktestForm strategies={STRATEGIES} submit={submit} onCreated={onCreated} />);
  return { onCreated, user: userEvent.setup() };
}

describe("BacktestForm", () => {
  it("draws one field per schema property, of its kind, with its default and bounds", () => {
    setup(vi.fn());
    const lookback = screen.getByLabelText("Lookback") as HTMLInputElement;
    expect(lookback.type).toBe("number");
    expect(lookback.value).toBe("10");
    expect(lookback.step).toBe("1");
    expect(lookback.min).toBe("1");
    expect(lookback.max).toBe("10000");
    expect(screen.getByText(/Snapshots over which the move is measured\. · ≥ 1, ≤ 10000/)).toBeInTheDocument();
    const threshold = screen.getByLabelText("Threshold") as HTMLInputElement;
    expect(threshold.step).toBe("any");
    expect(threshold.value).toBe("0.1");
    expect(screen.getByText("> 0, < 1")).toBeInTheDocument();
    const side = screen.getByLabelText("Side") as HTMLSelectElement;
    expect(side.tagName).toBe("SELECT");
    expect([...side.options].map((o) => o.value)).toEqual(["yes", "no"]);
    expect(side.value).toBe("no");
    expect((screen.getByLabelText("Exit At Close") as HTMLInputElement).checked).toBe(true);
    expect((screen.getByLabelText("Label") as HTMLInputElement).type).toBe("text");
    expect((screen.getByLabelText("Label") as HTMLInputElement).value).toBe("");
  });

  it("switches to another strategy's fields and defaults", async () => {
    const { user } = setup(vi.fn());
    await user.type(screen.getByLabelText("Lookback"), "5");
    await user.selectOptions(screen.getByLabelText("Strategy"), "buy_and_hold");
    expect(screen.queryByLabelText("Lookback")).toBeNull();
    expect((screen.getByLabelText("Size") as HTMLInputElement).value).toBe("10");
  });

  it("sends the typed parameters, the window in UTC and the market filter", async () => {
    const submit = vi.fn(async (_body: BacktestCreate) => ({ id: "0b6f8a52-0000-4000-8000-000000000001" }));
    const { user, onCreated } = setup(submit);
    const lookback = screen.getByLabelText("Lookback");
    await user.clear(lookback);
    await user.type(lookback, "25");
    await user.selectOptions(screen.getByLabelText("Side"), "yes");
    await user.click(screen.getByLabelText("Exit At Close"));
    const start = screen.getByLabelText("Start") as HTMLInputElement;
    await user.clear(start);
    await user.type(start, "2026-03-01T10:00");
    await user.selectOptions(screen.getByLabelText("Filter by"), "tickers");
    await user.type(screen.getByLabelText("Market filter"), "KXA-1, KXB-2 KXC-3");
    await user.click(screen.getByRole("button", { name: "Run backtest" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalledWith("0b6f8a52-0000-4000-8000-000000000001"));
    const body = submit.mock.calls[0]![0];
    expect(body.strategy).toBe("momentum");
    expect(body.params).toEqual({ lookback: 25, threshold: 0.1, side: "yes", exit_at_close: false });
    expect(body.start).toBe(new Date("2026-03-01T10:00").toISOString());
    expect(body.end).toMatch(/Z$/);
    expect(body.market_filter).toEqual({ tickers: ["KXA-1", "KXB-2", "KXC-3"] });
  });

  it("shows the API's field errors next to their fields", async () => {
    const submit = vi.fn(async () => {
      throw new ApiError(422, "invalid request: body.params.threshold, body.end", [
        { field: "body.params.threshold", message: "Input should be less than 1" },
        { field: "body.end", message: "end must be after start" },
        { field: "body.initial_capital", message: "Input should be greater than 0" },
      ]);
    });
    const { user, onCreated } = setup(submit);
    const threshold = screen.getByLabelText("Threshold");
    await user.clear(threshold);
    await user.type(threshold, "2");
    await user.click(screen.getByRole("button", { name: "Run backtest" }));
    const error = await screen.findByText("Input should be less than 1");
    // Next to its field: in the threshold's row, and named by the input as its description.
    expect(error.closest(".field")).toBe(threshold.closest(".field"));
    expect(threshold).toHaveAttribute("aria-invalid", "true");
    expect(threshold).toHaveAttribute("aria-describedby", error.id);
    expect(screen.getByText("end must be after start").closest(".field")).toBe(screen.getByLabelText("End").closest(".field"));
    // An error of no field on the form goes above the buttons, naming its field.
    expect(screen.getByText("initial_capital: Input should be greater than 0")).toBeInTheDocument();
    expect(screen.getByLabelText("Lookback")).not.toHaveAttribute("aria-invalid");
    expect(onCreated).not.toHaveBeenCalled();
    expect((submit.mock.calls[0] as unknown as [BacktestCreate])[0].params).toMatchObject({ threshold: 2 });
  });

  it("says so when the API cannot be reached", async () => {
    const { user } = setup(async () => {
      throw new ApiError(null, "Failed to fetch");
    });
    await user.click(screen.getByRole("button", { name: "Run backtest" }));
    expect(await screen.findByText(/The API is unreachable/)).toBeInTheDocument();
  });
});
