import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { Ladders } from "./Ladders";

describe("Ladders", () => {
  it("shows the YES ladder's asks from the NO bids and the NO ladder's asks from the YES bids", () => {
    render(
      <Ladders
        book={{
          yes: [{ price: "0.4400", size: "5" }],
          no: [
            { price: "0.5500", size: "7" },
            { price: "0.5000", size: "2" },
          ],
        }}
      />,
    );
    const yes = screen.getByRole("region", { name: "YES ladder" });
    expect(within(yes).getByTestId("ask-0.45")).toHaveTextContent("45¢7");
    expect(within(yes).getByTestId("ask-0.5")).toHaveTextContent("50¢2");
    expect(within(yes).getByTestId("bid-0.44")).toHaveTextContent("44¢5");
    const no = screen.getByRole("region", { name: "NO ladder" });
    expect(within(no).getByTestId("ask-0.56")).toHaveTextContent("56¢5");
    expect(within(no).getByTestId("bid-0.55")).toHaveTextContent("55¢7");
  });
});
