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

export function Errors({ id, messages }: { id: string; messages: string[] | undefined }) {
  if (!messages?.length) return null;
  return (
    <div className="field-error" id={id} role="alert">
      {messages.join("; ")}
    </div>
  );
}

export function Row({
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

/** The chosen strategy and the values of its generated parameter fields (reset to its defaults on a change). */
export type StrategyChoice = {
  name: string;
  strategy: StrategyInfo | undefined;
  fields: SchemaField[];
  values: Record<string, FieldValue>;
  choose: (name: string) => void;
  set: (field: string, v: FieldValue) => void;
  params: () => Record<string, unknown>;
};

export function useStrategyChoice(strategies: StrategyInfo[], onChange?: () => void): StrategyChoice {
  const [name, setName] = useState(strategies[0]?.name ?? "");
  const strategy = strategies.find((s) => s.name === name);
  const fields = useMemo(() => fieldsOf(strategy?.params_schema), [strategy]);
  const [values, setValues] = useState<Record<string, FieldValue>>(() => initialValues(fields));
  return {
    name,
    strategy,
    fields,
    values,
    choose: (next) => {
      setName(next);
      setValues(initialValues(fieldsOf(strategies.find((s) => s.name === next)?.params_schema)));
      onChange?.();
    },
    set: (field, v) => setValues((old) => ({ ...old, [field]: v })),
    params: () => paramsOf(fields, values),
  };
}

/** The strategy select and its parameters, generated from its ``params_schema``; errors keyed as errorsByField. */
export function StrategyFields({
  strategies,
  choice,
  errors,
}: {
  strategies: StrategyInfo[];
  choice: StrategyChoice;
  errors: Record<string, string[]>;
}) {
  const base = useId();
  const sid = `${base}-strategy`;
  return (
    <>
      <h3>Strategy</h3>
      <Row id={sid} label="Strategy" hint={choice.strategy?.description} errors={errors.strategy}>
        <select id={sid} value={choice.name} onChange={(e) => choice.choose(e.target.value)}>
          {strategies.map((s) => (
            <option key={`${s.name}-${s.version}`} value={s.name}>
              {s.name} (v{s.version})
            </option>
          ))}
        </select>
      </Row>
      <h3>Parameters</h3>
      <Errors id={`${base}-params-error`} messages={errors.params} />
      <ParamFields key={choice.name} fields={choice.fields} values={choice.values} errors={errors} onChange={choice.set} />
    </>
  );
}

export type MarketFilterState = {
  kind: FilterKind;
  text: string;
  setKind: (k: FilterKind) => void;
  setText: (t: string) => void;
  /** What to ask of the user before sending, or null. */
  missing: () => string | null;
  value: () => ReturnType<typeof marketFilterOf>;
};

export function useMarketFilter(initial: FilterKind): MarketFilterState {
  const [kind, setKind] = useState<FilterKind>(initial);
  const [text, setText] = useState("");
  return {
    kind,
    text,
    setKind,
    setText,
    missing: () =>
      kind !== "any" && !text.trim() ? (kind === "category" ? "Enter a category." : "Enter one or more tickers.") : null,
    value: () => marketFilterOf(kind, text),
  };
}

/** The market selection: any market (when ``allowAny``), one category word, or tickers. */
export function MarketFilterField({
  id,
  filter,
  errors,
  allowAny = true,
}: {
  id: string;
  filter: MarketFilterState;
  errors: string[] | undefined;
  allowAny?: boolean;
}) {
  return (
    <Row id={id} label="Market filter" hint="a category word (e.g. politics) or tickers separated by commas" errors={errors}>
      <div className="filter-row">
        <select aria-label="Filter by" value={filter.kind} onChange={(e) => filter.setKind(e.target.value as FilterKind)}>
          {allowAny && <option value="any">Any market</option>}
          <option value="category">Category</option>
          <option value="tickers">Tickers</option>
        </select>
        <input
          id={id}
          type="text"
          value={filter.text}
          disabled={filter.kind === "any"}
          placeholder={filter.kind === "category" ? "politics" : filter.kind === "tickers" ? "KXFOO-1, KXBAR-2" : ""}
          aria-invalid={!!errors || undefined}
          onChange={(e) => filter.setText(e.target.value)}
        />
      </div>
    </Row>
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
  const [errors, setErrors] = useState<Record<string, string[]>>({});
  const choice = useStrategyChoice(strategies, () => setErrors({}));
  const [win, setWindow] = useState(defaultWindow);
  const filter = useMarketFilter("any");
  const [busy, setBusy] = useState(false);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    const local: Record<string, string[]> = {};
    const start = utcOf(win.start);
    const end = utcOf(win.end);
    if (!start) local.start = ["Enter a start time."];
    if (!end) local.end = ["Enter an end time."];
    const filterError = filter.missing();
    if (filterError) local.market_filter = [filterError];
    if (Object.keys(local).length) {
      setErrors(local);
      return;
    }
    const body: BacktestCreate = { strategy: choice.name, params: choice.params(), start, end };
    const selection = filter.value();
    if (selection !== undefined) body.market_filter = selection;
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

  return (
    <form className="run-form" onSubmit={(e) => void onSubmit(e)} noValidate aria-label="New backtest">
      <fieldset disabled={busy}>
        <div className="form-grid">
          <div className="form-col">
            <StrategyFields strategies={strategies} choice={choice} errors={errors} />
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
            <MarketFilterField id={`${base}-filter`} filter={filter} errors={errors.market_filter} />
          </div>
        </div>
        <Errors id={`${base}-form-error`} messages={errors[""]} />
        <FormActions busy={busy} label="Run backtest" onCancel={onCancel} />
      </fieldset>
    </form>
  );
}

/** A run form's buttons: submit (saying so while the request is out) and, when the form can be closed, Cancel. */
export function FormActions({ busy, label, onCancel }: { busy: boolean; label: string; onCancel?: () => void }) {
  return (
    <div className="form-actions">
      <button type="submit" className="primary">
        {busy ? "Starting…" : label}
      </button>
      {onCancel && (
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      )}
    </div>
  );
}
