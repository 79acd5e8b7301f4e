import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import {
  JUPYTER_DISPLAY,
  jupyterDisplay,
  mimeBundleOf,
  normalizeLayout,
  PLOTLY_MIME,
  plotlyFigure,
  plotlyFigureHtml,
} from "../viz/mod.ts";

const spec = {
  data: [{ type: "scatter" as const, mode: "lines", name: "a</script>b", x: [1, 2], y: [3, 4] }],
  layout: { title: "T", xaxis: { title: "x" }, yaxis: { title: { text: "y" } } },
};

Deno.test("figure bundle: Plotly JSON, static HTML, SVG and text; no Plotly.js inside", async () => {
  const fig = plotlyFigure(spec);
  assertEquals(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  const bundle = await fig[JUPYTER_DISPLAY]();
  assertEquals(
    Object.keys(bundle).sort(),
    [PLOTLY_MIME, "image/svg+xml", "text/html", "text/plain"].sort(),
  );
  const json = bundle[PLOTLY_MIME] as {
    data: unknown[];
    layout: Record<string, unknown>;
    config: Record<string, unknown>;
  };
  assertEquals(json.layout.title, { text: "T" });
  assertEquals(json.layout.xaxis, { title: { text: "x" } });
  assertEquals(json.data, spec.data);
  assertEquals(json.config, { responsive: true, displaylogo: false });
  assertMatch(bundle["text/plain"] as string, /Plotly figure "T": 1 trace/);
  const svg = bundle["image/svg+xml"] as string;
  assertEquals(svg, fig.toSVG());
  assertEquals(
    bundle["text/html"],
    `<div class="ssmrec-figure" style="max-width:720px">${svg}</div>`,
  );
  const size = JSON.stringify(bundle).length;
  assert(size < 20_000, `the bundle is ${size} characters; it must not carry Plotly.js`);
});

Deno.test("figure HTML for pages: one script tag when asked, the spec script-safe, ids", () => {
  const fig = plotlyFigure(spec);
  const first = fig.toHTML({ scriptSrc: "../plotly.min.js", id: "p0" });
  const later = fig.toHTML({ id: "p1" });
  assert(first.startsWith(`<script type="text/javascript" src="../plotly.min.js"></script>\n`));
  assert(!later.includes('<script type="text/javascript" src='));
  assertStringIncludes(later, `<div id="p1-static"><svg`);
  assertStringIncludes(later, `document.getElementById("p1")`);
  assert(!later.includes("a</script>b"), "script-safe JSON");
  assertStringIncludes(later, "a\\u003c/script\\u003eb");
  const byDefault = plotlyFigureHtml({ data: spec.data });
  assertEquals(plotlyFigureHtml({ data: spec.data }), byDefault, "the default id is stable");
  assertMatch(byDefault, /id="ssmrec-plot-[0-9a-z]+-static"/);
});

/** Runs the inline scripts of `html` against a stub page; returns what Plotly.newPlot got. */
async function drawWithStubPlotly(html: string, id: string) {
  const elements = new Map([id, `${id}-static`].map((key) => [key, { style: { display: "" } }]));
  const calls: { div: unknown; data: unknown; layout: unknown; config: unknown }[] = [];
  const window = {
    Plotly: {
      newPlot(div: unknown, data: unknown, layout: unknown, config: unknown) {
        calls.push({ div, data, layout, config });
        return Promise.resolve();
      },
    },
  };
  const document = { getElementById: (key: string) => elements.get(key) ?? null };
  const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)];
  assertEquals(scripts.length, 1);
  new Function("window", "document", "setTimeout", scripts[0][1])(window, document, setTimeout);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return { calls, elements };
}

Deno.test("figure HTML for pages: the script draws the spec and then hides the static image", async () => {
  const fig = plotlyFigure(spec);
  const { calls, elements } = await drawWithStubPlotly(fig.toHTML({ id: "p7" }), "p7");
  assertEquals(calls.length, 1);
  assertEquals(calls[0].div, elements.get("p7"));
  assertEquals(calls[0].data, spec.data);
  assertEquals(calls[0].layout, fig.layout);
  assertEquals(calls[0].config, fig.config);
  assertEquals(elements.get("p7")!.style.display, "block");
  assertEquals(elements.get("p7-static")!.style.display, "none");
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
    await jupyterDisplay(plotlyFigure(spec), "plain", { a: 1 });
  } finally {
    console.log = log;
  }
  assertEquals(printed.length, 3);
  assertMatch(printed[0], /^Plotly figure/);
  assertEquals(printed[1], "plain");
  assertEquals((await mimeBundleOf({ a: 1 }))["text/plain"], "{ a: 1 }");
});
