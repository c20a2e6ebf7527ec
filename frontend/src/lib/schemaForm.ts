// A run form generated from a strategy's parameter JSON schema (pydantic's): one field per property, its default,
// bounds and description. Values are kept as the user typed them and sent as typed: the API validates, and its
// field errors ("body.params.size") are shown next to the field they name.

export type FieldKind = "integer" | "number" | "boolean" | "enum" | "string";

export type SchemaField = {
  name: string;
  kind: FieldKind;
  label: string;
  description?: string;
  required: boolean;
  default?: unknown;
  options?: string[];
  /** Inclusive bounds (HTML min/max) and the exclusive ones, for the hint. */
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  nullable: boolean;
};

/** A form value: what the input holds (text for numbers and strings, a flag for a checkbox). */
export type FieldValue = string | boolean;

type Schema = Record<string, unknown>;

const isObject = (v: unknown): v is Schema => !!v && typeof v === "object" && !Array.isArray(v);
const numberOr = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The schema of a property with ``Optional[...]`` (anyOf with null) unwrapped. */
function unwrapNullable(prop: Schema): { prop: Schema; nullable: boolean } {
  const any = prop.anyOf ?? prop.oneOf;
  if (Array.isArray(any)) {
    const others = any.filter((s) => isObject(s) && s.type !== "null") as Schema[];
    if (others.length === 1) return { prop: { ...others[0], ...prop, anyOf: undefined, oneOf: undefined }, nullable: true };
  }
  return { prop, nullable: false };
}

function kindOf(prop: Schema): FieldKind {
  if (Array.isArray(prop.enum)) return "enum";
  switch (prop.type) {
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    default:
      return "string";
  }
}

/** The fields of a params schema, in its properties' order. */
export function fieldsOf(schema: unknown): SchemaField[] {
  if (!isObject(schema) || !isObject(schema.properties)) return [];
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  return Object.entries(schema.properties).flatMap(([name, raw]) => {
    if (!isObject(raw)) return [];
    const { prop, nullable } = unwrapNullable(raw);
    const kind = kindOf(prop);
    const field: SchemaField = {
      name,
      kind,
      label: typeof prop.title === "string" ? prop.title : name,
      required: required.has(name),
      nullable,
    };
    if (typeof prop.description === "string") field.description = prop.description;
    if ("default" in prop) field.default = prop.default;
    if (kind === "enum") field.options = (prop.enum as unknown[]).map(String);
    const bounds = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] as const;
    for (const b of bounds) {
      const v = numberOr(prop[b]);
      if (v !== undefined) field[b] = v;
    }
    return [field];
  });
}

/** The form's starting values: each field's default ("" when it has none; unchecked for a flag). */
export function initialValues(fields: SchemaField[]): Record<string, FieldValue> {
  const values: Record<string, FieldValue> = {};
  for (const f of fields) {
    if (f.kind === "boolean") values[f.name] = f.default === true;
    else values[f.name] = f.default === undefined || f.default === null ? "" : String(f.default);
  }
  return values;
}

/** The ``params`` object to send: numbers as numbers when they read as one (else the text, for the API to
 * name), blanks left out (the strategy's default applies). */
export function paramsOf(fields: SchemaField[], values: Record<string, FieldValue>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (v === undefined) continue;
    if (f.kind === "boolean") {
      params[f.name] = v === true;
      continue;
    }
    const text = String(v).trim();
    if (text === "") continue;
    if (f.kind === "integer" || f.kind === "number") {
      const n = Number(text);
      params[f.name] = Number.isFinite(n) ? n : text;
    } else {
      params[f.name] = text;
    }
  }
  return params;
}

/** "≥ 1, ≤ 10000" from a field's bounds, or "". */
export function boundsHint(f: SchemaField): string {
  const parts: string[] = [];
  if (f.minimum !== undefined) parts.push(`≥ ${f.minimum}`);
  if (f.exclusiveMinimum !== undefined) parts.push(`> ${f.exclusiveMinimum}`);
  if (f.maximum !== undefined) parts.push(`≤ ${f.maximum}`);
  if (f.exclusiveMaximum !== undefined) parts.push(`< ${f.exclusiveMaximum}`);
  return parts.join(", ");
}

/** The form's input that an API field error names: ``body.params.size`` → ``params.size``; the window's sides
 * (``start``/``start_date``) → ``start``/``end``; anything of the market filter → ``market_filter``. Fields the
 * form does not show map to null (shown above the buttons). */
export function formKeyOf(apiField: string, extra: readonly string[] = []): string | null {
  const path = apiField.replace(/^body\./, "");
  if (path === "body") return null;
  const top = path.split(".")[0]!;
  if (extra.includes(top)) return top;
  if (path.startsWith("params.")) return `params.${path.split(".")[1]}`;
  if (path === "params") return "params";
  if (path === "start" || path === "start_date") return "start";
  if (path === "end" || path === "end_date") return "end";
  if (path === "market_filter" || path.startsWith("market_filter.")) return "market_filter";
  if (path === "strategy" || path === "strategy_version") return "strategy";
  return null;
}

/** The API's field errors grouped by form key; the rest under "". ``extra``: top-level body fields this form shows
 * besides the strategy, its parameters, the window and the market filter (e.g. a paper session's capital). */
export function errorsByField(
  errors: { field: string; message: string }[],
  extra: readonly string[] = [],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of errors) {
    const key = formKeyOf(e.field, extra) ?? "";
    const message = key === "" ? `${e.field.replace(/^body\./, "")}: ${e.message}` : e.message;
    (out[key] ??= []).push(message);
  }
  return out;
}

/** A ``market_filter`` from the form: any market, one category word, or tickers separated by commas/spaces. */
export type FilterKind = "any" | "category" | "tickers";

export function marketFilterOf(kind: FilterKind, text: string): string | { tickers: string[] } | undefined {
  const t = text.trim();
  if (kind === "any") return undefined;
  if (kind === "category") return t;
  return { tickers: t.split(/[\s,]+/).filter(Boolean) };
}
