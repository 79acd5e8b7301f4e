/**
 * The notice a notebook shows beside a recorded run made by other code than the checked-out one.
 *
 * @module
 */
import { escapeHtml, type RichDisplay, withRichDisplay } from "../viz/mod.ts";
import { recordStaleness, type RunRecord } from "./run_record.ts";

/**
 * Nothing for `null` or a record of the current code; for a record made by other code (or by
 * code of unknown version), one display: a highlighted line that says which code recorded it,
 * which code runs now, that the numbers may differ and how to rerun it.
 */
export async function staleRecordNotice(record: RunRecord | null): Promise<RichDisplay[]> {
  if (record === null) return [];
  const staleness = await recordStaleness(record);
  if (!staleness.stale) return [];
  const text = `Note: ${staleness.message}.`;
  return [withRichDisplay({}, () => ({
    "text/plain": text,
    "text/html": `<p style="border-left: 4px solid #d9822b; padding: 4px 8px; ` +
      `background: #fff4e5"><strong>${escapeHtml(text)}</strong></p>`,
  }))];
}
