import { describe, expect, it } from "vitest";
import { judgeRuntime } from "../src/primary/runtime.js";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";

describe("the Node.js runtime check at start", () => {
  it("supports 24, runs 20.19+ and 22 with a warning that names 24, refuses older", () => {
    expect(judgeRuntime("24.22.3")).toEqual({ verdict: "supported" });
    for (const v of ["20.19.0", "20.20.2", "22.12.0"]) {
      const judged = judgeRuntime(v);
      expect(judged.verdict, v).toBe("warn");
      expect(judged.verdict !== "supported" && judged.message, v).toContain("Node 24 LTS");
    }
    for (const v of ["18.20.4", "20.18.1"]) expect(judgeRuntime(v).verdict, v).toBe("refuse");
    expect(judgeRuntime("26.1.0").verdict).toBe("warn");
  });

  it("agrees with engines in package.json", () => {
    const packageJson = JSON.parse(readFileSync(resolve(__dirname, "../package.json"), "utf8")) as { engines: { node: string } };
    expect(packageJson.engines.node).toBe("^20.19.0 || ^24.0.0");
  });
});
