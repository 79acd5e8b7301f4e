import { assertEquals } from "@std/assert";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The folders each lower folder may import from (itself included). */
const ALLOWED: Record<string, readonly string[]> = {
  host: ["host"],
  data: ["data", "host"],
  viz: ["viz", "host"],
};

/** Relative module imports and re-exports (type-only ones included) of a TypeScript file. */
function relativeImports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const specifiers = [...text.matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/gs)]
    .map((m) => m[1]);
  return specifiers.map((s) => relative(ROOT, normalize(join(dirname(file), s))));
}

/** The import graph of the TypeScript files in the given folders, paths relative to the root. */
function importGraph(folders: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const folder of folders) {
    for (const entry of Deno.readDirSync(join(ROOT, folder))) {
      if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
      const file = join(folder, entry.name);
      graph.set(file, relativeImports(join(ROOT, file)));
    }
  }
  return graph;
}

/** Every import cycle reachable in the graph, each as the files along it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const visit = (file: string, path: string[]) => {
    state.set(file, "open");
    for (const next of graph.get(file) ?? []) {
      if (!graph.has(next)) continue;
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next, [...path, next]);
    }
    state.set(file, "done");
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file, [file]);
  return found;
}

const graph = importGraph(Object.keys(ALLOWED));

Deno.test("layers: host imports nothing above it; data and viz import only themselves and host", () => {
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const allowed = ALLOWED[file.split("/")[0]];
    for (const target of imports) {
      if (!allowed.includes(target.split("/")[0])) violations.push(`${file} imports ${target}`);
    }
  }
  assertEquals(violations, []);
});

Deno.test("layers: no import cycle among the files of host/, data/ and viz/", () => {
  assertEquals(cycles(graph).map((c) => c.join(" -> ")), []);
});

Deno.test("layers: the cycle finder reports a cycle and the layer rule sees a wrong import", () => {
  const looped = new Map([["a.ts", ["b.ts"]], ["b.ts", ["a.ts"]], ["c.ts", []]]);
  assertEquals(cycles(looped).map((c) => c.join(" -> ")), ["a.ts -> b.ts -> a.ts"]);
  assertEquals(ALLOWED.data.includes("viz"), false);
  assertEquals(ALLOWED.viz.includes("data"), false);
});
