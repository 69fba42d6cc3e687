import { describe, expect, it, onTestFinished, vi } from "vitest";
import { RESERVED_MS, ReservedRooms } from "../src/worker/adapter/reserved-rooms.js";

describe("reserved rooms (a restored session's rooms before its socket joins them)", () => {
  it("lets each room go RESERVED_MS after its latest reservation, in one call per sweep", () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const expired: string[][] = [];
    const reserved = new ReservedRooms((rooms) => expired.push(rooms));
    reserved.add(["a", "b"]);
    vi.advanceTimersByTime(RESERVED_MS / 2);
    reserved.add(["b", "c"]); // b reserved again by a later restore
    vi.advanceTimersByTime(RESERVED_MS / 2 - 1);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual([["a"]]);
    expect([reserved.has("a"), reserved.has("b"), reserved.has("c")]).toEqual([false, true, true]);
    vi.advanceTimersByTime(RESERVED_MS / 2);
    expect(expired).toEqual([["a"], ["b", "c"]]);
    expect(reserved.has("b")).toBe(false);
    reserved.close();
  });

  it("releases nothing once closed", () => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const expired: string[][] = [];
    const reserved = new ReservedRooms((rooms) => expired.push(rooms));
    reserved.add(["a"]);
    reserved.close();
    vi.advanceTimersByTime(RESERVED_MS * 2);
    expect(expired).toEqual([]);
  });
});
