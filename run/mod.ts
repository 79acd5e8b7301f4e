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
  type RecordStaleness,
  recordStaleness,
  RETRAIN_STALE_COMMAND,
  RUN_RECORD_FORMAT,
  type RunRecord,
  type RunRecordFormat,
  runRecordPath,
  writeRunRecord,
} from "./run_record.ts";
export {
  type CodeVersion,
  codeVersion,
  describeCodeVersion,
  gitState,
  HASHED_SOURCE_FOLDERS,
  requireProjectRoot,
  sourceHash,
} from "./code_version.ts";
export {
  CHECKED_STATISTICS,
  type CheckedStatistic,
  EXPECTED_STATISTICS,
  EXPECTED_STATISTICS_SOURCE,
  matchesExpected,
  observedStatistics,
  type StatisticMismatch,
  statisticMismatches,
  STATISTICS_MIME,
  statisticsComparison,
  type StatisticValues,
} from "./expected_statistics.ts";
export {
  type CellExpectations,
  cellSource,
  checkExecutedNotebook,
  type Notebook,
  type NotebookCell,
  type NotebookOutput,
} from "./notebook_check.ts";
export {
  ensurePlotlyBundle,
  executeNotebook,
  installKernel,
  JUPYTER_PACKAGE,
  jupyterVersion,
  type NotebookResult,
  runCaptured,
} from "./jupyter_runner.ts";
export {
  findStaleRecords,
  type RetrainArguments,
  retrainArguments,
  retrainRecord,
  type StaleRecord,
} from "./retrain_stale.ts";
export { ensureRuntimeDir, privateRuntimeDir } from "./runtime_dir.ts";
export { detectMode, reproduce, type ReproduceMode, type ReproduceOptions } from "./reproduce.ts";
