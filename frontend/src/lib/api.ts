// The generated client (src/client, from the API's OpenAPI document) pointed at the API.
// Built and served by the API itself, the dashboard calls its own origin; `npm run dev` (:5173) calls the API
// on :8000, or VITE_API_BASE.
import { client } from "../client/client.gen";

export const API_BASE: string =
  (import.meta.env.VITE_API_BASE as string | undefined) ?? (import.meta.env.DEV ? "http://127.0.0.1:8000" : "");

client.setConfig({ baseUrl: API_BASE });

/** One input the API found at fault (problem+json ``errors``): ``field`` as ``body.params.size``. */
export type FieldError = { field: string; message: string };

/** An answer of the API that is not a success: its problem+json body when it sent one. */
export class ApiError extends Error {
  readonly status: number | null;
  readonly errors: FieldError[];
  constructor(status: number | null, message: string, errors: FieldError[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errors = errors;
  }
}

type Result<T> = { data?: T; error?: unknown; response?: Response };

/** The data of a generated call, or an ApiError (network failures become status null). */
export async function unwrap<T>(call: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await call;
  } catch (e) {
    throw new ApiError(null, e instanceof Error ? e.message : "the API is unreachable");
  }
  const { data, error, response } = result;
  if (error !== undefined || !response || !response.ok) {
    const status = response?.status ?? null;
    let message = `HTTP ${status ?? "error"}`;
    let errors: FieldError[] = [];
    if (error && typeof error === "object") {
      const body = error as { detail?: unknown; title?: unknown; errors?: unknown };
      if (typeof body.detail === "string") message = body.detail;
      else if (typeof body.title === "string") message = body.title;
      if (Array.isArray(body.errors)) {
        errors = body.errors.filter(
          (e): e is FieldError =>
            !!e && typeof e === "object" && typeof (e as FieldError).field === "string" && typeof (e as FieldError).message === "string",
        );
      }
    }
    throw new ApiError(status, message, errors);
  }
  return data as T;
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.status === 404;
}

/** Whether an id from the URL can be a run's or a session's id (a UUID): else the page is a not-found at once. */
export const isUuid = (id: string): boolean => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
