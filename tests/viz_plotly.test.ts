import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "node:path";
import {
  findPlotlyBundle,
  JUPYTER_DISPLAY,
  jupyterDisplay,
  mimeBundleOf,
  normalizeLayout,
  PLOTLY_MIME,
  plotlyFigure,
} from "../viz/mod.ts";

const spec = {
  data: [{ type: "scatter" as const, mode: "lines", name: "a</script>b", x: [1, 2], y: [3, 4] }],
  layout: { title: "T", xaxis: { title: "x" }, yaxis: { title: { text: "y" } } },
};

Deno.test("figure bundle: Plotly JSON, HTML, SVG and text, titles in Plotly.js 3 form", async () => {
  const fig = plotlyFigure(spec, { includePlotlyJs: "never" });
  assertEquals(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  const bundle = await fig[JUPYTER_DISPLAY]();
  assertEquals(
    Object.keys(bundle).sort(),
    [PLOTLY_MIME, "image/svg+xml", "text/html", "text/plain"].sort(),
  );
  const json = bundle[PLOTLY_MIME] as { data: unknown[]; layout: Record<string, unknown> };
  assertEquals(json.layout.title, { text: "T" });
  assertEquals(json.layout.xaxis, { title: { text: "x" } });
  assertEquals(json.data, spec.data);
  assertMatch(bundle["text/plain"] as string, /Plotly figure "T": 1 trace/);
  const html = bundle["text/html"] as string;
  assert(!html.includes("if (!window.Plotly)"), "no bundle in never mode");
  assert(html.includes("<svg"), "static SVG inside the HTML");
  assert(html.includes("Plotly.newPlot"));
  assert(!html.includes("a</script>b"), "script-safe JSON");
  assert(html.includes("a\\u003c/script\\u003eb"));
  assertEquals(bundle["image/svg+xml"], fig.toSVG());
});

Deno.test("figure HTML: the Plotly.js bundle is inlined once per process in 'once' mode", async () => {
  const dir = await Deno.makeTempDir();
  const fake = join(dir, "plotly.min.js");
  await Deno.writeTextFile(fake, "window.Plotly = { newPlot() { return Promise.resolve(); } };");
  Deno.env.set("SSMREC_PLOTLY_JS", fake);
  try {
    assertEquals(findPlotlyBundle(), fake);
    const first = await plotlyFigure(spec).toHTML();
    const second = await plotlyFigure(spec).toHTML();
    const always = await plotlyFigure(spec, { includePlotlyJs: "always" }).toHTML();
    assert(
      first.startsWith(`<script type="text/javascript">if (!window.Plotly) {\nwindow.Plotly = {`),
    );
    assert(!second.includes("if (!window.Plotly)"));
    assert(always.includes("if (!window.Plotly)"));
  } finally {
    Deno.env.delete("SSMREC_PLOTLY_JS");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("normalizeLayout leaves object titles and other keys alone", () => {
  assertEquals(normalizeLayout({ title: { text: "a" }, width: 3, xaxis: { type: "log" } }), {
    title: { text: "a" },
    width: 3,
    xaxis: { type: "log" },
  });
});

Deno.test("outside a kernel, jupyterDisplay prints the text form", async () => {
  const printed: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => printed.push(args.join(" "));
  try {
    await jupyterDisplay(plotlyFigure(spec, { includePlotlyJs: "never" }), "plain", { a: 1 });
  } finally {
    console.log = log;
  }
  assertEquals(printed.length, 3);
  assertMatch(printed[0], /^Plotly figure/);
  assertEquals(printed[1], "plain");
  assertEquals((await mimeBundleOf({ a: 1 }))["text/plain"], "{ a: 1 }");
});
