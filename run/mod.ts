/**
 * The run layer: everything between a user's request and the models: experiments, run records
 * and progress display.
 *
 * @module
 */
export type { JupyterApi, JupyterDisplayOptions } from "../host/mod.ts";
export {
  formatDuration,
  type ProgressOutput,
  stepProgressText,
  TrainingProgress,
} from "./progress.ts";
export {
  plannedSettings,
  planRun,
  type RunPlan,
  type RunRequest,
  type RunSetup,
  SETTINGS_KNOWN_AFTER_LOADING,
  setupRun,
} from "./setup.ts";
export { firstUsersCsv, firstUsersName, firstUsersText, loadFirstUsers } from "./dataset_slice.ts";
export {
  checkOutputDirectory,
  checkOutputFile,
  exportNotebookHtml,
  type NotebookHtmlExport,
  type NotebookHtmlOptions,
  OutputPathError,
  SHARED_PLOTLY_FILE,
  withInteractiveFigures,
  writeSharedPlotly,
} from "./outputs.ts";
export { checkResume, type ResumeCheckOptions } from "./resume.ts";
export {
  type PreparedTraining,
  prepareTraining,
  runTraining,
  type TrainingRun,
  type TrainingRunOptions,
} from "./training_run.ts";
export { statisticsTable, withDatasetDisplay } from "./dataset_display.ts";
export {
  type ExperimentMode,
  type ExperimentOptions,
  type ExperimentResult,
  learningCurve,
  paperComparison,
  QUICK_TRAIN,
  QUICK_USERS,
  runExperiment,
} from "./experiment.ts";
export {
  codeLabel,
  defaultRunsDirectory,
  meanEpochSeconds,
  readRunRecord,
  recordKey,
  type RecordStaleness,
  recordStaleness,
  RETRAIN_STALE_COMMAND,
  RUN_RECORD_FORMAT,
  type RunKey,
  type RunRecord,
  type RunRecordFormat,
  runRecordPath,
  writeRunRecord,
} from "./run_record.ts";
export {
  coversRun,
  equivalenceChain,
  SOURCE_EQUIVALENCES,
  type SourceEquivalence,
} from "./source_equivalence.ts";
export {
  type IndexedRecord,
  presetSettingsDifferences,
  readRunIndex,
  RunIndex,
} from "./run_index.ts";
export {
  gridNotebookPath,
  type GridVariant,
  type RunGrid,
  type SmokeCell,
  smokesCell,
} from "./run_grid.ts";
export {
  gridsOfNotebooks,
  MAMBA4REC_ABLATION,
  MAMBA4REC_OVERALL,
  MAMBA4REC_TRAINING_MODES,
  PAPER_SEEDS,
  RUN_GRIDS,
  SSD4REC_ABLATION_GRIDS,
  SSD4REC_BETA_GRIDS,
  SSD4REC_MAX_LENGTH_GRIDS,
  SSD4REC_OVERALL,
  SSD4REC_RHO_GRIDS,
} from "./paper_grids.ts";
export {
  DATASET_LABELS,
  datasetLabel,
  MAMBA4REC_PAPER_VALUES,
  MODEL_LABELS,
  modelLabel,
  ORDER_LIMITED_DATASETS,
  type OrderLimit,
  type PaperValues,
  SSD4REC_OFFICIAL_KUAIRAND_EPOCH,
  type ThirdPartyEpochTiming,
} from "./paper_values.ts";
export { recordedOnlyGrid, studyRuns } from "./study_runs.ts";
export {
  type RunMeasure,
  SECONDS_PER_EPOCH,
  sweepFigure,
  type SweepFigureOptions,
  type SweptSetting,
  sweptValue,
  testMetric,
} from "./sweep_chart.ts";
export {
  estimateRunSeconds,
  type PlanLineOptions,
  planLines,
  type PlannedCell,
  type PlannedRun,
  type PlannedRunStatus,
  planReproduction,
  recordedSeconds,
  type ReproductionPlan,
  scaledRunSeconds,
} from "./reproduction_plan.ts";
export {
  describeSlice,
  type GridCell,
  gridRunKey,
  type GridRunOptions,
  gridRuns,
  gridRunTraining,
  recordCommand,
  recordOrderLimit,
  type SliceContents,
  sliceContents,
  SMOKE_TRAIN,
  SMOKE_USERS,
  SMOKE_USERS_BY_DATASET,
  type SmokeRun,
  variantSettings,
} from "./grid_runs.ts";
export { modelVariant, variantTag } from "./model_variant.ts";
export {
  formatSeedSummary,
  METRIC_DECIMALS,
  relativeDifference,
  type SeedSummary,
  summarizeSeeds,
} from "./seed_summary.ts";
export {
  collapsible,
  gridRunsSummary,
  OVERALL_METRICS,
  overallChart,
  overallTable,
  perSeedTable,
  rowLabel,
  smokeRunTable,
} from "./overall_table.ts";
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
  runTrainTask,
  type StaleRecord,
  type TrainCommand,
} from "./retrain_stale.ts";
export { staleRecordNotice } from "./record_notice.ts";
export {
  describePinnedGpu,
  DEVICE_SELECT_LAYER_MANIFEST,
  deviceSelectLayerFound,
  driPrimeTag,
  type GpuDevice,
  gpuPinningEnvironment,
  listNvidiaGpus,
  parseNvidiaSmiGpus,
  PINNED_GPU_INDEX_VARIABLE,
  PINNED_GPU_PCI_ADDRESS_VARIABLE,
  type PinnedGpu,
  pinnedGpu,
} from "./gpu_pinning.ts";
export {
  parseTrainLine,
  processSpawner,
  shownMetric,
  type TrainLineEvent,
  trainTaskArguments,
  type WorkerCommand,
  type WorkerExit,
  type WorkerJob,
  type WorkerSpawner,
} from "./train_worker.ts";
export {
  estimatedWallSeconds,
  GPU_SATURATING_RUNS,
  inStartOrder,
  longestFirst,
  type PoolStep,
  runsAlone,
  SCHEDULED_CHECKPOINTS,
  type ScheduledRun,
  scheduledRuns,
  type ScheduledRunsOptions,
  shortestFirst,
  staleRecordsLeftOut,
  type StartOrder,
  workerArguments,
  WorkerPool,
} from "./scheduled_runs.ts";
export {
  describeExit,
  MIN_START_SECONDS,
  type RunOutcome,
  type RunOutcomeStatus,
  runSchedule,
  SCHEDULED_LOGS,
  type ScheduleOptions,
  type ScheduleResult,
} from "./run_scheduler.ts";
export {
  type ScheduledTrainingOptions,
  scheduleLines,
  trainCommands,
  trainScheduled,
  type WorkerGpus,
  workerGpus,
} from "./scheduled_training.ts";
export {
  detectMode,
  type FoundNotebook,
  listNotebooks,
  notebookPath,
  type NotebookSelection,
  reproduce,
  type ReproduceMode,
  type ReproduceOptions,
  selectNotebooks,
} from "./reproduce.ts";
export {
  type EfficiencyRow,
  efficiencyRows,
  type EfficiencyRun,
  efficiencyTable,
} from "./efficiency.ts";
export {
  EFFICIENCY_DIRECTORY,
  EFFICIENCY_FORMAT,
  efficiencyFileName,
  type EfficiencyMeasurement,
  type HistoryLayout,
  historyLayout,
  type InferenceEfficiency,
  laterEpochSeconds,
  layoutText,
  readEfficiencyMeasurements,
  type TrainingEfficiency,
  trainingTimingText,
  writeEfficiencyMeasurement,
} from "./efficiency_file.ts";
export {
  EFFICIENCY_INFERENCE_REPEATS,
  EFFICIENCY_WARMUP_STEPS,
  efficiencyCommand,
  type EfficiencyRequest,
  measureEfficiency,
} from "./efficiency_measure.ts";
export {
  checkMatmulRate,
  definedEpochFloor,
  epochProjections,
  type EpochSize,
  MATMUL_RATE_COMMAND,
  packedEpochSize,
  type ProjectionFloor,
  projectionFloor,
  type ProjectionFlops,
  ssd4recDefinedProjectionFlops,
  ssd4recProjectionFlops,
  TRAINING_PRODUCTS_PER_FORWARD,
} from "./projection_flops.ts";
export {
  EFFICIENCY_SMOKE,
  efficiencyMeasurements,
  type EfficiencyRunOptions,
  type EfficiencyRuns,
} from "./efficiency_runs.ts";
export {
  efficiencyRatioChart,
  MAMBA4REC_PAPER_EFFICIENCY,
  memoryByPurposeTable,
  type PaperEfficiency,
  type PaperEfficiencyRow,
  paperEfficiencyTable,
  smokeEfficiencyTable,
} from "./efficiency_tables.ts";
export {
  LAYOUT_DATASETS,
  LAYOUT_PAD_TO,
  layoutRequests,
  layoutTable,
  lengthSweepChart,
  lengthSweepTable,
  SMOKE_SWEEP_LENGTHS,
  SWEEP_LENGTHS,
  SWEEP_MODELS,
  SWEEP_TIMED_STEPS,
  sweepRequests,
} from "./efficiency_sweep.ts";
export {
  BAR_COLUMN,
  DATASET_FLOOR_REQUESTS,
  datasetFloorsTable,
  EPOCH_FLOOR_BAR,
  FLOOR_COLUMNS,
  floorColumns,
  LATER_EPOCHS_COLUMN,
  type TableRow,
} from "./epoch_floors.ts";
export {
  EXAMPLE_MATMUL_TFLOPS,
  KUAIRAND_EPOCH_COMMAND,
  KUAIRAND_EPOCH_REQUEST,
  KUAIRAND_EPOCH_SMOKE,
  type KuaiRandEpochRunOptions,
  kuairandEpochRuns,
  kuairandEpochTable,
} from "./kuairand_epoch.ts";
export {
  compareSeeds,
  epochsToBest,
  secondsToBest,
  type SeedComparison,
  trainingModesTable,
  trainingModesVerdict,
  VERDICT_STANDARD_ERRORS,
} from "./training_modes.ts";
export {
  DEFAULT_K,
  EVENT_LOG_FILE,
  EventStore,
  FLUSH_EVENTS,
  FLUSH_INTERVAL_MS,
  handleRequest,
  type HttpOptions,
  loadMamba4RecCheckpoint,
  loadStreamableCheckpoint,
  type LoggedEvent,
  MAX_BODY_BYTES,
  MAX_K,
  RecommendationService,
  type Recommender,
  type RestoredState,
  type RunningServer,
  serveRecommendations,
  ServiceError,
  type ServiceEvent,
  type ServiceHealth,
  type ServiceOptions,
  type ServiceSnapshot,
  SNAPSHOT_EVERY_EVENTS,
  SNAPSHOT_FILE,
  type UserRecommendations,
} from "./serve/mod.ts";
export {
  KEPT_CHECKPOINTS,
  loadStreamingModel,
  recordedCheckpoint,
  type ReplayOptions,
  type ReplayStep,
  replayTable,
  replayUsers,
  STREAMED_SCORE_TOLERANCE,
  STREAMING_SMOKE_DATASET,
  type StreamingModel,
  type StreamingModelOptions,
  type UserReplay,
} from "./streaming_demo.ts";
export {
  historyLengths,
  measureStreamingCost,
  STREAMING_COST_SIZES,
  streamingCostChart,
  type StreamingCostPoint,
  type StreamingCostSizes,
} from "./streaming_cost.ts";
