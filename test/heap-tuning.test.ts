import { describe, expect, it } from "vitest";
import { operatorSizedYoungGeneration, workerExecArgv, WORKER_SEMI_SPACE_MB } from "../src/primary/heap-tuning.js";

describe("heap tuning", () => {
  it("caps the workers' young generation unless the operator sized it", () => {
    expect(workerExecArgv([], "")).toEqual([`--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]);
    expect(workerExecArgv(["--enable-source-maps"], "")).toEqual(["--enable-source-maps", `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`]);
    expect(workerExecArgv(["--max-semi-space-size=32"], "")).toEqual(["--max-semi-space-size=32"]);
    expect(workerExecArgv([], "--max-old-space-size=4096 --max_semi_space_size=2")).toEqual([]);
  });

  it("recognises every spelling of the young-generation flags", () => {
    for (const flag of ["--max-semi-space-size=4", "--min-semi-space-size=1", "--max_semi_space_size=4", "--semi-space-growth-factor=1"]) {
      expect(operatorSizedYoungGeneration([flag], "")).toBe(true);
      expect(operatorSizedYoungGeneration([], flag)).toBe(true);
    }
    expect(operatorSizedYoungGeneration(["--max-old-space-size=512"], "--inspect")).toBe(false);
  });
});
