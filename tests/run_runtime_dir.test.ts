import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { fileURLToPath } from "node:url";

/** libwayland's complaint, which the GPU stack's EGL start triggers without a runtime dir. */
const COMPLAINT = "XDG_RUNTIME_DIR is invalid or not set";

/** Whether libwayland-client can be loaded here. */
function haveWayland(): boolean {
  try {
    Deno.dlopen("libwayland-client.so.0", {}).close();
    return true;
  } catch {
    return false;
  }
}

/** A program that asks libwayland for a display the way wgpu's EGL backend does. */
const PROBE = `
const lib = Deno.dlopen("libwayland-client.so.0", {
  wl_display_connect: { parameters: ["pointer"], result: "pointer" },
});
lib.symbols.wl_display_connect(null);
console.log("XDG_RUNTIME_DIR=" + (Deno.env.get("XDG_RUNTIME_DIR") ?? ""));
`;

/** Runs the probe without XDG_RUNTIME_DIR, with or without the tasks' preload. */
async function probe(preload: boolean): Promise<{ stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/probe.ts`;
  await Deno.writeTextFile(file, PROBE);
  const preloadPath = fileURLToPath(new URL("../run/preload_runtime_dir.ts", import.meta.url));
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "TMPDIR"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(preload ? ["--preload", preloadPath] : []), file],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  await Deno.remove(dir, { recursive: true });
  const decoder = new TextDecoder();
  assert(out.success, decoder.decode(out.stderr));
  return { stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test({
  name: "runtime dir: the tasks' preload silences libwayland's XDG_RUNTIME_DIR complaint",
  ignore: !haveWayland(),
  async fn() {
    const without = await probe(false);
    assertStringIncludes(without.stderr, COMPLAINT, "the probe must show the complaint to test");
    const withPreload = await probe(true);
    assertEquals(withPreload.stderr.includes(COMPLAINT), false, withPreload.stderr);
    const dir = withPreload.stdout.trim().replace(/^XDG_RUNTIME_DIR=/, "");
    assert(dir !== "" && Deno.statSync(dir).isDirectory, withPreload.stdout);
    assertEquals(Deno.statSync(dir).mode! & 0o077, 0, `${dir} must be private`);
  },
});
