// Public API of the target client `pkg`: repositories, update, queries, install/remove/upgrade,
// generations and rollback, doctor, gc. Library code reports through the Reporter; only
// userland/cli prints.
export { createContext, STAGED_REPOS_DIR_IN_GUEST, type PkgContext, type PkgOptions } from './context.js';
export { rootPaths, storeDirName, type RootPaths } from './paths.js';
export {
  addRepository,
  listRepositories,
  removeRepository,
  readRepos,
  loadTrustedRoot,
  type AddRepoOptions,
  type RepoConfig,
  type RepoInfo,
} from './repos.js';
export {
  readStagedRepos,
  parseStagedRepo,
  stagedRepoFile,
  STAGED_REPO_FORMAT,
  type StagedRepo,
  type StagedRepoSpec,
} from './staged-repos.js';
export { updateRepositories, type RepoUpdate, type UpdateResult } from './update.js';
export { readCatalogState, loadCatalog, type CatalogState, type LoadedCatalog } from './catalog-store.js';
export {
  searchPackages,
  packageInfo,
  listPackages,
  packageFiles,
  type SearchHit,
  type PackageInfo,
  type ListedPackage,
  type ListFilter,
  type PackageFiles,
  type CatalogEntry,
} from './query.js';
export {
  installPackages,
  removePackages,
  removeOrphans,
  upgradePackages,
  type InstallOptions,
  type RemoveOptions,
  type UpgradeOptions,
  type MutationOptions,
  type TransactionResult,
  type PlanView,
  type PlanLine,
  type Available,
  type PackageSource,
} from './transaction.js';
export { listGenerations, rollback, collectGarbage, type GenerationSummary, type RollbackResult, type GcResult } from './generations.js';
export {
  readCurrent,
  readGeneration,
  currentNumber,
  planTree,
  expectedTree,
  GENERATION_FILE,
  type Generation,
  type GenerationPackage,
  type GenerationRelease,
  type TreePlan,
  type TreeLink,
} from './generation.js';
export { checkStoreEntry, readStoreManifest, type StoreProblem } from './store.js';
export { checkGeneration, newestCompleteGeneration, recoverCurrent, type GenerationCheck } from './generation-check.js';
export { doctor, type DoctorReport, type DoctorProblem } from './doctor.js';
export { bootCheck, readBootFallbacks, type BootCheckResult, type BootFallback } from './boot-check.js';
export {
  checkHealth,
  healCurrent,
  readHealthRecord,
  runCheck,
  systemChecks,
  HEALTH_OUTPUT_TAIL_BYTES,
  type HealthCheckResult,
  type HealthRecord,
  type HealthReport,
  type HealthOutcome,
  type PlannedCheck,
} from './health.js';
export { addTrustedKey, removeTrustedKey, trustedKeys, type TrustedKey } from './trusted-keys.js';
export { acquireWriterLock, readLockHolder, type LockHolder, type WriterLock } from './lock.js';
export { withWriterLock, findLeftovers, cleanupLeftovers, planThenApply, type PlanGate, type GateOutcome } from './writer.js';
export {
  downloadFile,
  fetchBytes,
  tryMirrors,
  joinUrl,
  DEFAULT_LIMITS,
  type TransferLimits,
  type DownloadOptions,
  type DownloadResult,
} from './download.js';
export {
  undiciTransport,
  fetchTransport,
  defaultTransport,
  type HttpTransport,
  type HttpResponse,
  type HttpRequest,
} from './http-transport.js';
export { nodeHttpTransport } from './node-http-transport.js';
export { crashPoint } from './crash-point.js';
export { installRelease, loadRelease, recordAcceptedRelease, type InstallReleaseResult, type LoadedRelease } from './release.js';
export { fetchPackages, type FetchResult } from './fetch-only.js';
export {
  DEFAULT_TRIES,
  SLOT_NAMES,
  entryFileName,
  entryText,
  folderArtifactSource,
  markSlotGood,
  otherSlot,
  planSystemUpdate,
  parseEntryFileName,
  readSystemStatus,
  rollbackSlot,
  slotPaths,
  sortKeyFor,
  stageSystemUpdate,
  type EntryName,
  type SlotName,
  type SlotStatus,
  type StageSystemUpdateOptions,
  type StageSystemUpdateResult,
  type SystemArtifactSource,
  type SystemLayout,
  type SystemStatus,
} from './system-slots.js';
export {
  DEFAULT_ESP,
  DEFAULT_SYSTEM_DISK,
  systemUpdate,
  type SystemUpdateOptions,
  type SystemUpdatePlan,
  parseSlotName,
  systemMarkGood,
  systemRollback,
  systemStatus,
  type SystemRollbackResult,
  type SystemStatusReport,
  type SystemTarget,
} from './system.js';
export { readGptDisk, type GptPartition } from './gpt-table.js';
