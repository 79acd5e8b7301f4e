/**
 * The provenance fields of a fake efficiency measurement for the run layer's tests: the current
 * format, an unknown commit, a fixed date and a test adapter.
 *
 * @module
 */
import { EFFICIENCY_FORMAT, type EfficiencyMeasurement } from "../run/efficiency_file.ts";

/** Where a fake measurement came from: spread it first into a test's `EfficiencyMeasurement`. */
export const FAKE_MEASUREMENT_PROVENANCE: Pick<
  EfficiencyMeasurement,
  "format" | "code" | "deno" | "measuredAt" | "command" | "adapter"
> = {
  format: EFFICIENCY_FORMAT,
  code: { commit: null, dirty: null, sourceHash: "sha256:0" },
  deno: "2",
  measuredAt: "2026-01-01T00:00:00.000Z",
  command: "",
  adapter: "Test GPU",
};
