import { useId, useState, type FormEvent } from "react";
import type { PaperSessionCreate, StrategyInfo } from "../client";
import { ApiError } from "../lib/api";
import { errorsByField } from "../lib/schemaForm";
import { Errors, FormActions, MarketFilterField, Row, StrategyFields, useMarketFilter, useStrategyChoice } from "./BacktestForm";

/** The body fields this form shows besides the strategy, its parameters and the markets. */
const SHOWN = ["name", "initial_capital", "max_position", "equity_interval_seconds", "restart_policy"] as const;

/** A new paper session: the same generated strategy form as a backtest, the markets it trades (required: a session
 * resolves its selection once, at the start), its account and restart policy. ``submit`` sends the body
 * (POST /api/v1/paper-sessions); a 422's field errors are shown next to their fields. */
export function PaperSessionForm({
  strategies,
  submit,
  onCreated,
  onCancel,
}: {
  strategies: StrategyInfo[];
  submit: (body: PaperSessionCreate) => Promise<{ id: string }>;
  onCreated: (id: string) => void;
  onCancel?: () => void;
}) {
  const base = useId();
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const choice = useStrategyChoice(strategies, () => setErrors({}));
  const filter = useMarketFilter("tickers");
  const [name, setName] = useState("");
  const [capital, setCapital] = useState("10000");
  const [interval, setEquityInterval] = useState("60");
  const [policy, setPolicy] = useState<"resume" | "reset">("resume");
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string[]> = {};
    const filterError = filter.missing();
    if (filterError) local.market_filter = [filterError];
    if (!capital.trim()) local.initial_capital = ["Enter the initial capital in dollars."];
    const every = Number(interval);
    if (interval.trim() && !Number.isFinite(every)) local.equity_interval_seconds = ["Enter a number of seconds."];
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body: PaperSessionCreate = {
      strategy: choice.name,
      params: choice.params(),
      initial_capital: capital.trim(), // a decimal string: exact, as the API keeps money
      restart_policy: policy,
    };
    const selection = filter.value();
    if (selection !== undefined) body.market_filter = selection;
    if (name.trim()) body.name = name.trim();
    if (interval.trim()) body.equity_interval_seconds = every;
    setBusy(true);
    setErrors({});
    try {
      const created = await submit(body);
      onCreated(created.id);
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) setErrors(errorsByField(err.errors, SHOWN));
      else if (err instanceof ApiError && err.status === null) setErrors({ "": ["The API is unreachable; try again in a moment."] });
      else setErrors({ "": [err instanceof Error ? err.message : String(err)] });
    } finally {
      setBusy(false);
    }
  };

  const field = (key: string) => `${base}-${key}`;
  return (
    <form className="run-form" onSubmit={(e) => void onSubmit(e)} noValidate aria-label="New paper session">
      <fieldset disabled={busy}>
        <div className="form-grid">
          <div className="form-col">
            <StrategyFields strategies={strategies} choice={choice} errors={errors} />
          </div>
          <div className="form-col">
            <h3>Markets</h3>
            <MarketFilterField id={field("filter")} filter={filter} errors={errors.market_filter} allowAny={false} />
            <h3>Account</h3>
            <Row id={field("name")} label="Session name" hint="optional" errors={errors.name}>
              <input id={field("name")} type="text" value={name} maxLength={200} onChange={(e) => setName(e.target.value)} />
            </Row>
            <Row id={field("capital")} label="Initial capital ($)" hint="> 0, at most 4 decimal places" errors={errors.initial_capital}>
              <input
                id={field("capital")}
                type="text"
                inputMode="decimal"
                value={capital}
                aria-invalid={!!errors.initial_capital || undefined}
                aria-describedby={errors.initial_capital ? `${field("capital")}-error` : undefined}
                onChange={(e) => setCapital(e.target.value)}
              />
            </Row>
            <Row
              id={field("interval")}
              label="Equity sample interval (s)"
              hint="how often the equity curve is sampled, 1–86400"
              errors={errors.equity_interval_seconds}
            >
              <input
                id={field("interval")}
                type="number"
                min={1}
                max={86400}
                step="any"
                value={interval}
                aria-invalid={!!errors.equity_interval_seconds || undefined}
                onChange={(e) => setEquityInterval(e.target.value)}
              />
            </Row>
            <Row
              id={field("policy")}
              label="After runner downtime"
              hint="resume: rebuild the strategy's state without trading, then trade on; reset: start a fresh session"
              errors={errors.restart_policy}
            >
              <select id={field("policy")} value={policy} onChange={(e) => setPolicy(e.target.value as "resume" | "reset")}>
                <option value="resume">resume</option>
                <option value="reset">reset</option>
              </select>
            </Row>
          </div>
        </div>
        <Errors id={`${base}-form-error`} messages={errors[""]} />
        <FormActions busy={busy} label="Start session" onCancel={onCancel} />
      </fieldset>
    </form>
  );
}
