/**
 * Checks a checkpoint's stored run settings against a planned run before any GPU or data work,
 * so that a resumed run never mixes two trainings: every differing setting fails, naming it with
 * both values, unless it is one of `RESUME_SAFE_SETTINGS` and the user set it on purpose.
 *
 * @module
 */
import {
  readCheckpointMetadata,
  RESUME_SAFE_SETTINGS,
  settingsDifferences,
  SettingsMismatchError,
  storedRunSettings,
} from "../models/training/checkpoint.ts";
import { plannedSettings, type RunPlan, SETTINGS_KNOWN_AFTER_LOADING } from "./setup.ts";

/** Options of {@link checkResume}. */
export interface ResumeCheckOptions {
  /** Settings keys (`train.epochs`, …) the user set explicitly for this run. */
  readonly explicit: readonly string[];
  /** How to name a key in the error (e.g. with its command-line flag). */
  readonly label?: (key: string) => string;
  /** What to do, closing the error message. */
  readonly advice?: string;
}

/**
 * Compares the settings stored in `checkpoint` with `plan`'s. Returns the keys the trainer may
 * accept as changed (the safe ones the user set explicitly); throws a
 * {@link SettingsMismatchError} naming every other differing key, or an error when the checkpoint
 * stores no settings.
 */
export async function checkResume(
  plan: RunPlan,
  checkpoint: string,
  options: ResumeCheckOptions,
): Promise<readonly string[]> {
  const stored = storedRunSettings(checkpoint, await readCheckpointMetadata(checkpoint));
  const allowed = RESUME_SAFE_SETTINGS.filter((key) => options.explicit.includes(key));
  const refused = settingsDifferences(stored, plannedSettings(plan), SETTINGS_KNOWN_AFTER_LOADING)
    .filter((d) => !allowed.includes(d.key));
  if (refused.length > 0) {
    const name = options.label ?? ((key: string) => key);
    const label = (key: string) =>
      RESUME_SAFE_SETTINGS.includes(key)
        ? `${name(key)} (set it explicitly to change it)`
        : name(key);
    throw new SettingsMismatchError(checkpoint, refused, label, options.advice);
  }
  return allowed;
}
