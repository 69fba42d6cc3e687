import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The code's layering: no file imports (through any chain of files) from a file that imports it
 * back, and no part of the code from a part that imports it back. A part is a folder of src/ or
 * scripts/ with its sub-folders (src/worker holds worker/adapter and worker/handlers), the harness,
 * test/helpers. A cycle means two places that cannot be understood, moved or tested apart; they
 * want a third module both import.
 */
const ROOT = resolve(__dirname, "..");
const TREES = ["src", "scripts", "harness", "test/helpers"];

function sources(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(join(ROOT, dir), { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.m?ts$/.test(e.name) && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Relative imports of every file (type-only ones too: they tie the code together as much). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of TREES.flatMap(sources)) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)].map((m) =>
      relative(ROOT, resolve(ROOT, dirname(file), m[1]!)).replace(/\.js$/, ".ts"),
    );
    graph.set(file, targets);
  }
  return graph;
}

/** The cycles of a graph, one per strongly connected component of more than one node (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("imports", () => {
  const files = importGraph();

  it("form no cycle between files", () => {
    const graph = new Map([...files].map(([f, targets]) => [f, new Set(targets)]));
    expect(cycles(graph)).toEqual([]);
  });

  it("form no cycle between folders", () => {
    const partOf = (file: string) => dirname(file).split("/").slice(0, 2).join("/");
    const graph = new Map<string, Set<string>>();
    for (const [file, targets] of files) {
      const from = partOf(file);
      if (!graph.has(from)) graph.set(from, new Set());
      for (const t of targets) if (partOf(t) !== from) graph.get(from)!.add(partOf(t));
    }
    expect(cycles(graph)).toEqual([]);
  });
});
