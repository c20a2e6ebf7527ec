import { describe, expect, it } from "vitest";
import { ladders } from "./ladder";

const lv = (price: string, size: string) => ({ price, size });

describe("ladders (a book of bids only)", () => {
  it("derives YES asks as 1 − NO bids, at their sizes, best (lowest) first", () => {
    const book = { yes: [lv("0.4200", "10"), lv("0.4400", "5")], no: [lv("0.5500", "7"), lv("0.5300", "3")] };
    const { yes } = ladders(book);
    expect(yes.bids).toEqual([
      { price: 0.44, size: 5 },
      { price: 0.42, size: 10 },
    ]);
    // 1 − 0.55 = 0.45 (not 0.44999999999999996), 1 − 0.53 = 0.47
    expect(yes.asks).toEqual([
      { price: 0.45, size: 7 },
      { price: 0.47, size: 3 },
    ]);
  });

  it("derives NO asks as 1 − YES bids", () => {
    const { no } = ladders({ yes: [lv("0.4400", "5")], no: [lv("0.5500", "7")] });
    expect(no.bids).toEqual([{ price: 0.55, size: 7 }]);
    expect(no.asks).toEqual([{ price: 0.56, size: 5 }]);
  });

  it("leaves out empty levels and copes with a one-sided book", () => {
    const { yes, no } = ladders({ yes: [lv("0.3000", "0"), lv("0.2900", "4")], no: [] });
    expect(yes.bids).toEqual([{ price: 0.29, size: 4 }]);
    expect(yes.asks).toEqual([]);
    expect(no.asks).toEqual([{ price: 0.71, size: 4 }]);
  });
});
