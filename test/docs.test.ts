import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_VARIABLES } from "../src/shared/config.js";

const root = resolve(__dirname, "..");
const read = (file: string) => readFileSync(resolve(root, file), "utf8");

/** The README is the product's front door: every option must be documented with its default. */
describe("documentation", () => {
  it("lists every configuration variable in .env.example and in the README's table", () => {
    const example = read(".env.example");
    const readme = read("README.md");
    const missingInExample = CONFIG_VARIABLES.filter((v) => !new RegExp(`^#? ?${v}=`, "m").test(example));
    const missingInReadme = CONFIG_VARIABLES.filter((v) => !readme.includes(`| \`${v}\` |`));
    expect(missingInExample).toEqual([]);
    expect(missingInReadme).toEqual([]);
  });

  it("runs the README's test command in CI", () => {
    expect(read("README.md")).toContain("npm test");
    expect(read(".ci/run")).toMatch(/^npm test$/m);
  });
});

describe("README configuration table", () => {
  it("is the one generated from .env.example (npm run docs:env)", async () => {
    const { envTable, withTable } = await import("../scripts/docs/env-table.js");
    const readme = read("README.md");
    expect(withTable(readme, envTable(read(".env.example")))).toBe(readme);
  });
});
