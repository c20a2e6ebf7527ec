import { defineConfig } from "@hey-api/openapi-ts";

// The API client, generated from the API's own OpenAPI document (frontend/openapi.json, written by
// `python -m kalshi_analytics.api.openapi`). Regenerate with `npm run generate`; never edit src/client by hand.
export default defineConfig({
  input: "./openapi.json",
  // OPENAPI_TS_OUTPUT: where the drift test (tests/api/test_dashboard.py) generates a copy to compare.
  output: { path: process.env.OPENAPI_TS_OUTPUT ?? "./src/client" },
  plugins: ["@hey-api/client-fetch", "@hey-api/typescript", "@hey-api/sdk"],
});
