import { assert, assertEquals, assertMatch } from "@std/assert";
import { formatTick, linearTicks, logTicks, renderSvg } from "../viz/mod.ts";

Deno.test("ticks: 1-2-5 steps, log decades, short labels", () => {
  assertEquals(linearTicks(0, 10, 6), [0, 2, 4, 6, 8, 10]);
  assertEquals(linearTicks(0.1, 0.35, 6), [0.1, 0.15, 0.2, 0.25, 0.3, 0.35]);
  assertEquals(logTicks(1, 1000), [1, 3, 10, 30, 100, 300, 1000]);
  assertEquals(logTicks(2, 90), [2, 5, 10, 20, 50]);
  assertEquals(
    [formatTick(0), formatTick(0.30000000000000004), formatTick(25000), formatTick(3e6)],
    [
      "0",
      "0.3",
      "25k",
      "3M",
    ],
  );
});

Deno.test("SVG: lines with title, axis titles, legend and escaped text", () => {
  const svg = renderSvg([
    { type: "scatter", mode: "lines", name: "train <loss>", x: [1, 2, 3], y: [3, 2, 1] },
    { type: "scatter", mode: "markers", name: "valid", x: [1, 2, 3], y: [3.5, 2.5, 2] },
  ], { title: { text: "Curves & more" }, xaxis: { title: "epoch" }, yaxis: { title: "loss" } });
  assertMatch(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="720" height="420"/);
  assert(svg.includes(">Curves &amp; more</text>"));
  assert(svg.includes(">train &lt;loss&gt;</text>"));
  assert(svg.includes(">epoch</text>") && svg.includes(">loss</text>"));
  assertEquals((svg.match(/<path d="M/g) ?? []).length, 1);
  assertEquals((svg.match(/<circle /g) ?? []).length, 3 + 1); // markers + legend marker
  assert(svg.trimEnd().endsWith("</svg>"));
});

Deno.test("SVG: string x values make a category axis; log axes", () => {
  const categories = renderSvg([
    { name: "ours", x: ["a", "b"], y: [1, 2] },
    { name: "paper", x: ["b", "c"], y: [1.5, 2.5], mode: "markers" },
  ]);
  assert(categories.includes(">a</text>") && categories.includes(">c</text>"));
  // One label per category, not per point.
  assertEquals((categories.match(/>b<\/text>/g) ?? []).length, 1);
  assertEquals((categories.match(/<circle /g) ?? []).length, 2 + 2 + 2); // markers + legend
  const log = renderSvg([{ x: [1, 10, 100], y: [1, 0.1, 0.01] }], {
    xaxis: { type: "log" },
    yaxis: { type: "log" },
  });
  assert(log.includes(">100</text>") && log.includes(">0.01</text>"));
});
