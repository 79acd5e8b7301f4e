import { assert, assertEquals, assertMatch, assertStringIncludes, assertThrows } from "@std/assert";
import {
  type ArchitectureDescription,
  architectureDiagram,
  JUPYTER_DISPLAY,
  packedBatchDiagram,
  type PackedBatchPicture,
} from "../viz/mod.ts";

const model: ArchitectureDescription = {
  title: "Tiny <model>",
  input: { label: "ids", shape: ["B", 8] },
  steps: [
    { label: "Embedding", parameters: 40, output: ["B", 8, 4] },
    {
      label: "Block",
      parameters: 36,
      parts: [
        { name: "proj", detail: "weight [8, 4]", parameters: 32 },
        { name: "D", parameters: 4 },
      ],
      output: ["B", 8, 4],
      group: "Layer 1 of 1",
    },
    { label: "Last item", parameters: 0, output: ["B", 4], group: "Layer 1 of 1" },
    { label: "Scores", parameters: 0, output: ["B", 10] },
  ],
  note: "B rows",
};

/** How often `needle` occurs in `text`. */
function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

Deno.test("architecture diagram: every step, its parts, the shapes between steps, one bracket", () => {
  const fig = architectureDiagram(model);
  const svg = fig.toSVG();
  assert(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert(svg.endsWith("</svg>"));
  for (const label of ["Embedding", "Block", "proj", "weight [8, 4]", "Last item", "Scores"]) {
    assertStringIncludes(svg, `>${label}</text>`);
  }
  assertStringIncludes(svg, "Tiny &lt;model&gt;");
  // The input shape, then each step's output but the last on the arrow into the next step.
  for (const shape of ["[B, 8]", "[B, 8, 4]", "[B, 4]"]) assertStringIncludes(svg, `>${shape}<`);
  assertStringIncludes(svg, ">output [B, 10]<");
  assertEquals(occurrences(svg, `marker-end="url(#ssmrec-arrowhead)"`), 4);
  assertEquals(occurrences(svg, ">Layer 1 of 1</text>"), 1, "consecutive steps share a bracket");
  assertStringIncludes(svg, ">76 parameters in all</text>");
  assertStringIncludes(svg, ">36 params</text>");
  assertEquals(
    String(fig),
    "Tiny <model>: 4 steps, 76 parameters, input [B, 8] → output [B, 10]",
  );
});

Deno.test("architecture diagram: displayed as SVG and text", () => {
  const fig = architectureDiagram(model);
  const bundle = fig[JUPYTER_DISPLAY]();
  assertEquals(Object.keys(bundle).sort(), ["image/svg+xml", "text/plain"]);
  assertEquals(bundle["image/svg+xml"], fig.toSVG());
});

Deno.test("architecture diagram: parts that do not add up, bad counts and no steps fail", () => {
  const wrong = {
    ...model,
    steps: model.steps.map((s) => (s.label === "Block" ? { ...s, parameters: 35 } : s)),
  };
  const error = assertThrows(() => architectureDiagram(wrong), RangeError);
  assertMatch(error.message, /step 2 \(Block\): its parts hold 36 parameters but the step says 35/);
  assertThrows(
    () => architectureDiagram({ ...model, steps: [{ ...model.steps[0], parameters: -1 }] }),
    RangeError,
    "step 1 (Embedding): parameters must be a non-negative integer, got -1",
  );
  assertThrows(() => architectureDiagram({ ...model, steps: [] }), RangeError, "at least one step");
});

/** A packed row of segments of the given lengths, reversed per segment as SSD4Rec does it. */
function packedRow(lengths: readonly number[], firstItem = 1): PackedBatchPicture {
  const tokens = lengths.reduce((a, b) => a + b, 0);
  const items = Int32Array.from({ length: tokens }, (_, p) => firstItem + p);
  const seqIdx = new Int32Array(tokens);
  const reversal = new Int32Array(tokens);
  const lastIndex = new Int32Array(lengths.length);
  let at = 0;
  lengths.forEach((n, s) => {
    const end = at + n - 1;
    for (let p = at; p <= end; p++) {
      seqIdx[p] = s;
      reversal[p] = at + end - p;
    }
    lastIndex[s] = end;
    at = end + 1;
  });
  return {
    title: "Packed",
    items,
    seqIdx,
    reversal,
    reversedItems: Int32Array.from(reversal, (from) => items[from]),
    users: Int32Array.from(lengths, (_, s) => 10 + s),
    lastIndex,
  };
}

Deno.test("packed batch diagram: three rows, a link per token, last tokens, a legend", () => {
  const seed = Date.now() % 100_000;
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lengths = Array.from(
    { length: 2 + Math.floor(next() * 5) },
    () => 1 + Math.floor(next() * 9),
  );
  const picture = packedRow(lengths);
  const tokens = picture.items.length;
  const svg = packedBatchDiagram(picture).toSVG();
  const where = `seed ${seed}, lengths ${lengths}`;
  // Cells: segment ids, forward row, backward row; one link per token.
  assertEquals(occurrences(svg, `fill-opacity="0.28"`), 3 * tokens, where);
  assertEquals(occurrences(svg, `stroke-opacity="0.75"`), tokens, where);
  assertEquals(occurrences(svg, `fill="#222222"/>`), lengths.length, `${where}: last tokens`);
  lengths.forEach((n, s) => {
    assertStringIncludes(svg, `>segment ${s}: user ${10 + s}, ${n} tokens</text>`, where);
  });
  assertEquals(
    String(packedBatchDiagram(picture)),
    `Packed: ${lengths.length} segments packed in ${tokens} tokens (lengths ${
      lengths.join(", ")
    }), each reversed in place for the backward direction`,
    where,
  );
});

Deno.test("packed batch diagram: a reversal that is wrong, leaves its segment or mismatches fails", () => {
  const picture = packedRow([3, 2], 5);
  assertEquals(Array.from(picture.reversedItems), [7, 6, 5, 9, 8]);
  const swapped = Int32Array.from(picture.reversedItems);
  swapped[1] = 5;
  assertThrows(
    () => packedBatchDiagram({ ...picture, reversedItems: swapped }),
    RangeError,
    "reversedItems[1] = 5 but the item at reversal[1] = 1 is 6",
  );
  assertThrows(
    () => packedBatchDiagram({ ...picture, reversal: Int32Array.of(2, 1, 0, 4, 2) }),
    RangeError,
    "reversal[4] = 2 is not a position of token 4's segment 1",
  );
  assertThrows(
    () => packedBatchDiagram({ ...picture, seqIdx: Int32Array.of(0, 0, 1, 0, 1) }),
    RangeError,
    "seqIdx[3] = 0",
  );
  assertThrows(
    () => packedBatchDiagram({ ...picture, reversedItems: Int32Array.of(7, 6, 5) }),
    RangeError,
    "reversedItems has 3 entries for 5 tokens",
  );
});
