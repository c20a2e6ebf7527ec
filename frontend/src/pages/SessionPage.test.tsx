import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

const stopPaperSession = vi.fn();
vi.mock("../client", async (original) => ({ ...(await original<typeof import("../client")>()), stopPaperSession: (...a: unknown[]) => stopPaperSession(...a) }));

const { StopButton } = await import("./SessionPage");
const SID = "11111111-2222-3333-4444-555555555555";

function answer(status: number, body: unknown) {
  const response = new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/problem+json" } });
  return status < 300 ? { data: body, response } : { error: body, response };
}

describe("StopButton", () => {
  beforeEach(() => stopPaperSession.mockReset());

  it("stops the session and then has the page read it again", async () => {
    stopPaperSession.mockResolvedValue(answer(200, { id: SID, status: "stopped" }));
    const onDone = vi.fn();
    render(<StopButton sessionId={SID} onDone={onDone} />);
    await userEvent.setup().click(screen.getByRole("button", { name: "Stop session" }));
    await waitFor(() => expect(onDone).toHaveBeenCalledWith(null));
    expect(stopPaperSession).toHaveBeenCalledWith({ path: { session_id: SID } });
  });

  it("tells the page what a 409 says (someone ended it first); the page re-reads the session either way", async () => {
    stopPaperSession.mockResolvedValue(answer(409, { title: "Conflict", status: 409, detail: `paper session ${SID} is already failed` }));
    const onDone = vi.fn();
    render(<StopButton sessionId={SID} onDone={onDone} />);
    await userEvent.setup().click(screen.getByRole("button", { name: "Stop session" }));
    await waitFor(() => expect(onDone).toHaveBeenCalledWith(`Not stopped: paper session ${SID} is already failed.`));
  });
});
