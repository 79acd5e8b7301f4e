/**
 * Finding the Plotly.js browser bundle on disk, for the one Plotly.js file that the HTML exports
 * of executed notebooks share.
 *
 * `plotly.js-dist` is browser-only and cannot be imported in Deno; its file is taken from Deno's
 * npm cache (or a `node_modules` directory) instead. The full bundle is about 11 MB; a minified
 * copy (about 5 MB, made once with `deno bundle --minify`) is kept in the project's `.cache`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { env, isFile, projectRoot } from "../host/mod.ts";

/** The `plotly.js-dist` version the project's import map names, if it can be read. */
export function plotlyVersion(): string | undefined {
  try {
    const resolved = import.meta.resolve("plotly.js-dist");
    return /plotly\.js-dist@([^/]+)/.exec(resolved)?.[1];
  } catch {
    return undefined;
  }
}

/** Deno's cache directory, as Deno itself chooses it. */
function denoDir(): string | undefined {
  const explicit = env("DENO_DIR");
  if (explicit) return explicit;
  const home = env("HOME") ?? env("USERPROFILE");
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    return local ? join(local, "deno") : undefined;
  }
  if (Deno.build.os === "darwin") return home ? join(home, "Library", "Caches", "deno") : undefined;
  const xdg = env("XDG_CACHE_HOME");
  return xdg ? join(xdg, "deno") : home ? join(home, ".cache", "deno") : undefined;
}

/** Directory names under `dir`, or none. */
function subdirectories(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((e) => e.name);
  } catch {
    return [];
  }
}

/** Compares dotted version strings numerically. */
function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/).map(Number);
  const pb = b.split(/[.-]/).map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The path of the Plotly.js browser bundle: `$SSMREC_PLOTLY_JS` if set, else `plotly.js-dist` in
 * Deno's npm cache (the version in the import map first, else the newest), else in a
 * `node_modules` directory of the project. `undefined` when none is found.
 */
export function findPlotlyBundle(): string | undefined {
  const explicit = env("SSMREC_PLOTLY_JS");
  if (explicit && isFile(explicit)) return explicit;
  const files = ["plotly.min.js", "plotly.js"];
  const packageDirs: string[] = [];
  const cache = denoDir();
  if (cache) {
    const registry = join(cache, "npm", "registry.npmjs.org", "plotly.js-dist");
    const versions = subdirectories(registry).sort(compareVersions).reverse();
    const wanted = plotlyVersion();
    if (wanted && versions.includes(wanted)) versions.unshift(wanted);
    packageDirs.push(...versions.map((v) => join(registry, v)));
  }
  const root = projectRoot();
  if (root) {
    packageDirs.push(join(root, "node_modules", "plotly.js-dist"));
    const hidden = join(root, "node_modules", ".deno");
    for (const d of subdirectories(hidden).filter((n) => n.startsWith("plotly.js-dist@"))) {
      packageDirs.push(join(hidden, d, "node_modules", "plotly.js-dist"));
    }
  }
  for (const dir of packageDirs) {
    for (const file of files) {
      if (isFile(join(dir, file))) return join(dir, file);
    }
  }
  return undefined;
}

/** Where the minified copy of a bundle is kept. */
function minifiedPath(bundle: string): string | undefined {
  const root = projectRoot();
  if (!root) return undefined;
  let version = "unknown";
  try {
    const pkg = JSON.parse(Deno.readTextFileSync(join(dirname(bundle), "package.json")));
    version = String(pkg.version);
  } catch {
    // A bundle without its package.json keeps the "unknown" label.
  }
  return join(root, ".cache", "plotly", `plotly-${version}.min.js`);
}

/** Minifies `bundle` into `target` with `deno bundle`; returns whether it worked. */
async function minify(bundle: string, target: string): Promise<boolean> {
  try {
    await Deno.mkdir(dirname(target), { recursive: true });
    const temporary = `${target}.tmp-${Deno.pid}`;
    const result = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--no-config",
        "--quiet",
        "--minify",
        "--format",
        "iife",
        "--platform",
        "browser",
        bundle,
        "-o",
        temporary,
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    // The bundle must still publish window.Plotly, or it is no use in a page.
    if (!result.success || !/window\.Plotly\s*=/.test(await Deno.readTextFile(temporary))) {
      await Deno.remove(temporary).catch(() => {});
      return false;
    }
    await Deno.rename(temporary, target);
    return true;
  } catch {
    return false;
  }
}

let cachedSource: Promise<string | undefined> | undefined;

/**
 * The Plotly.js bundle source for pages to load, minified when possible, or `undefined` when no
 * bundle can be found. Read once per process.
 */
export function plotlyScriptSource(): Promise<string | undefined> {
  cachedSource ??= (async () => {
    const bundle = findPlotlyBundle();
    if (!bundle) return undefined;
    const min = bundle.endsWith(".min.js") ? undefined : minifiedPath(bundle);
    if (min && (isFile(min) || await minify(bundle, min))) return await Deno.readTextFile(min);
    return await Deno.readTextFile(bundle);
  })();
  return cachedSource;
}
