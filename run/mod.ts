/**
 * The run layer: everything between a user's request and the models: experiments, run records
 * and progress display.
 *
 * @module
 */
export { type JupyterApi, jupyterKernel, TrainingProgress } from "./progress.ts";
export { statisticsTable, withDatasetDisplay } from "./dataset_display.ts";
export {
  type ExperimentMode,
  type ExperimentOptions,
  type ExperimentResult,
  firstUsersText,
  learningCurve,
  paperComparison,
  runExperiment,
} from "./experiment.ts";
export {
  defaultRunsDirectory,
  meanEpochSeconds,
  readRunRecord,
  RUN_RECORD_FORMAT,
  type RunRecord,
  runRecordPath,
  writeRunRecord,
} from "./run_record.ts";
