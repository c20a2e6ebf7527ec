import { useId, useMemo, useState, type FormEvent, type ReactNode } from "react";
import type { BacktestCreate, StrategyInfo } from "../client";
import { ApiError } from "../lib/api";
import {
  boundsHint,
  errorsByField,
  fieldsOf,
  initialValues,
  marketFilterOf,
  paramsOf,
  type FieldValue,
  type FilterKind,
  type SchemaField,
} from "../lib/schemaForm";

/** A Date as the value of a datetime-local input (the user's zone, to the minute). */
export function localInputValue(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A datetime-local value (the user's zone) as ISO UTC, or null when it is not a time. */
export function utcOf(local: string): string | null {
  if (!local) return null;
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** The default window: the last day, up to the next whole hour (so what was just recorded is inside). */
function defaultWindow(now = new Date()): { start: string; end: string } {
  const end = new Date(now);
  end.setMinutes(0, 0, 0);
  end.setHours(end.getHours() + 1);
  const start = new Date(end.getTime() - 25 * 3600 * 1000);
  return { start: localInputValue(start), end: localInputValue(end) };
}

function Errors({ id, messages }: { id: string; messages: string[] | undefined }) {
  if (!messages?.length) return null;
  return (
    <div className="field-error" id={id} role="alert">
      {messages.join("; ")}
    </div>
  );
}

function Row({
  id,
  label,
  hint,
  errors,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  errors: string[] | undefined;
  children: ReactNode;
}) {
  return (
    <div className={`field ${errors?.length ? "field-invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint && <div className="field-hint">{hint}</div>}
      <Errors id={`${id}-error`} messages={errors} />
    </div>
  );
}

function ParamInput({
  field,
  id,
  value,
  invalid,
  onChange,
}: {
  field: SchemaField;
  id: string;
  value: FieldValue;
  invalid: boolean;
  onChange: (v: FieldValue) => void;
}) {
  const described = invalid ? `${id}-error` : undefined;
  if (field.kind === "boolean") {
    return (
      <input
        id={id}
        type="checkbox"
        checked={value === true}
        aria-invalid={invalid || undefined}
        aria-describedby={described}
        onChange={(e) => onChange(e.target.checked)}
      />
    );
  }
  if (field.kind === "enum") {
    return (
      <select id={id} value={String(value)} aria-invalid={invalid || undefined} aria-describedby={described} onChange={(e) => onChange(e.target.value)}>
        {!field.required && field.default === undefined && <option value="">(default)</option>}
        {field.options?.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  }
  const numeric = field.kind === "integer" || field.kind === "number";
  return (
    <input
      id={id}
      type={numeric ? "number" : "text"}
      inputMode={numeric ? (field.kind === "integer" ? "numeric" : "decimal") : undefined}
      step={field.kind === "integer" ? 1 : numeric ? "any" : undefined}
      min={field.minimum}
      max={field.maximum}
      value={String(value)}
      placeholder={field.default === undefined || field.default === null ? "" : String(field.default)}
      aria-invalid={invalid || undefined}
      aria-describedby={described}
      onChange={(e) => onChange(e.target.value)}
    />
  );
}

/** The form of one strategy's parameters; remounted (by key) when the strategy changes, so defaults apply. */
function ParamFields({
  fields,
  values,
  errors,
  onChange,
}: {
  fields: SchemaField[];
  values: Record<string, FieldValue>;
  errors: Record<string, string[]>;
  onChange: (name: string, v: FieldValue) => void;
}) {
  const base = useId();
  if (fields.length === 0) return <p className="muted small">This strategy takes no parameters.</p>;
  return (
    <>
      {fields.map((f) => {
        const id = `${base}-param-${f.name}`;
        const errs = errors[`params.${f.name}`];
        const hint = [f.description, boundsHint(f)].filter(Boolean).join(" · ");
        return (
          <Row key={f.name} id={id} label={f.label} hint={hint || undefined} errors={errs}>
            <ParamInput field={f} id={id} value={values[f.name] ?? ""} invalid={!!errs?.length} onChange={(v) => onChange(f.name, v)} />
          </Row>
        );
      })}
    </>
  );
}

/** A new backtest: the strategy, its parameters (generated from its ``params_schema``), the window and the market
 * filter. ``submit`` sends the body (POST /api/v1/backtests); a 422's field errors are shown next to their fields. */
export function BacktestForm({
  strategies,
  submit,
  onCreated,
  onCancel,
}: {
  strategies: StrategyInfo[];
  submit: (body: BacktestCreate) => Promise<{ id: string }>;
  onCreated: (id: string) => void;
  onCancel?: () => void;
}) {
  const base = useId();
  const [strategyName, setStrategyName] = useState(strategies[0]?.name ?? "");
  const strategy = strategies.find((s) => s.name === strategyName);
  const fields = useMemo(() => fieldsOf(strategy?.params_schema), [strategy]);
  const [values, setValues] = useState<Record<string, FieldValue>>(() => initialValues(fields));
  const [win, setWindow] = useState(defaultWindow);
  const [filterKind, setFilterKind] = useState<FilterKind>("any");
  const [filterText, setFilterText] = useState("");
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const [busy, setBusy] = useState(false);

  const chooseStrategy = (name: string) => {
    setStrategyName(name);
    setValues(initialValues(fieldsOf(strategies.find((s) => s.name === name)?.params_schema)));
    setErrors({});
  };

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string[]> = {};
    const start = utcOf(win.start);
    const end = utcOf(win.end);
    if (!start) local.start = ["Enter a start time."];
    if (!end) local.end = ["Enter an end time."];
    if (filterKind !== "any" && !filterText.trim()) {
      local.market_filter = [filterKind === "category" ? "Enter a category." : "Enter one or more tickers."];
    }
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body: BacktestCreate = { strategy: strategyName, params: paramsOf(fields, values), start, end };
    const filter = marketFilterOf(filterKind, filterText);
    if (filter !== undefined) body.market_filter = filter;
    setBusy(true);
    setErrors({});
    try {
      const created = await submit(body);
      onCreated(created.id);
    } catch (err) {
      if (err instanceof ApiError && err.errors.length) setErrors(errorsByField(err.errors));
      else if (err instanceof ApiError && err.status === null) setErrors({ "": ["The API is unreachable; try again in a moment."] });
      else setErrors({ "": [err instanceof Error ? err.message : String(err)] });
    } finally {
      setBusy(false);
    }
  };

  const sid = `${base}-strategy`;
  return (
    <form className="run-form" onSubmit={(e) => void onSubmit(e)} noValidate aria-label="New backtest">
      <fieldset disabled={busy}>
        <div className="form-grid">
          <div className="form-col">
            <h3>Strategy</h3>
            <Row id={sid} label="Strategy" hint={strategy?.description} errors={errors.strategy}>
              <select id={sid} value={strategyName} onChange={(e) => chooseStrategy(e.target.value)}>
                {strategies.map((s) => (
                  <option key={`${s.name}-${s.version}`} value={s.name}>
                    {s.name} (v{s.version})
                  </option>
                ))}
              </select>
            </Row>
            <h3>Parameters</h3>
            <Errors id={`${base}-params-error`} messages={errors.params} />
            <ParamFields
              key={strategyName}
              fields={fields}
              values={values}
              errors={errors}
              onChange={(name, v) => setValues((old) => ({ ...old, [name]: v }))}
            />
          </div>
          <div className="form-col">
            <h3>Window</h3>
            <Row
              id={`${base}-start`}
              label="Start"
              hint={`${utcOf(win.start)?.replace(":00.000Z", "Z") ?? "—"} UTC, inclusive`}
              errors={errors.start}
            >
              <input
                id={`${base}-start`}
                type="datetime-local"
                value={win.start}
                aria-invalid={!!errors.start || undefined}
                onChange={(e) => setWindow((w) => ({ ...w, start: e.target.value }))}
              />
            </Row>
            <Row
              id={`${base}-end`}
              label="End"
              hint={`${utcOf(win.end)?.replace(":00.000Z", "Z") ?? "—"} UTC, exclusive`}
              errors={errors.end}
            >
              <input
                id={`${base}-end`}
                type="datetime-local"
                value={win.end}
                aria-invalid={!!errors.end || undefined}
                onChange={(e) => setWindow((w) => ({ ...w, end: e.target.value }))}
              />
            </Row>
            <h3>Markets</h3>
            <Row
              id={`${base}-filter`}
              label="Market filter"
              hint="a category word (e.g. politics) or tickers separated by commas"
              errors={errors.market_filter}
            >
              <div className="filter-row">
                <select
                  aria-label="Filter by"
                  value={filterKind}
                  onChange={(e) => setFilterKind(e.target.value as FilterKind)}
                >
                  <option value="any">Any market</option>
                  <option value="category">Category</option>
                  <option value="tickers">Tickers</option>
                </select>
                <input
                  id={`${base}-filter`}
                  type="text"
                  value={filterText}
                  disabled={filterKind === "any"}
                  placeholder={filterKind === "category" ? "politics" : filterKind === "tickers" ? "KXFOO-1, KXBAR-2" : ""}
                  aria-invalid={!!errors.market_filter || undefined}
                  onChange={(e) => setFilterText(e.target.value)}
                />
              </div>
            </Row>
          </div>
        </div>
        <Errors id={`${base}-form-error`} messages={errors[""]} />
        <div className="form-actions">
          <button type="submit" className="primary">
            {busy ? "Starting…" : "Run backtest"}
          </button>
          {onCancel && (
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          )}
        </div>
      </fieldset>
    </form>
  );
}
