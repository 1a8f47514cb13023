// Public API of images/: the guest artifact set (build, verify) and the QEMU runner with its serial console.
export {
  ARTIFACT_FILES,
  buildImages,
  sharedLibraries,
  verifyArtifacts,
  type ArtifactFile,
  type ArtifactManifest,
  type BuildImagesOptions,
  type BuildImagesResult,
  type StageRepo,
} from './build-images.js';
export {
  BASE_LABEL,
  STORE_LABEL,
  createStoreImage,
  makeExt4Image,
  type CreateStoreImageOptions,
  type Ext4ImageOptions,
} from './store-image.js';
export { writeCpioNewc, type CpioEntry } from './cpio-archive.js';
export {
  baseDiskPathOf,
  defaultDownloadCache,
  fetchGuestPackages,
  findRepoRoot,
  readKernelPin,
  type FetchGuestPackagesOptions,
  type GuestModule,
  type KernelArtifacts,
  type RuntimeArtifacts,
} from './kernel-packages.js';
export {
  GUEST_ARCH_PROFILES,
  emulatorFor,
  hostGuestArch,
  parseGuestArch,
  profileOfDebianArch,
  type GuestArchProfile,
} from './guest-arch.js';
export { moduleLoadOrder, readModuleInfo, type ModuleInfo } from './module-info.js';
export { bundlePkgClient, choosePkgBundle, PKG_ENTRY, type PkgBundle, type PkgBundleMode } from './pkg-bundle.js';
export { chooseAccelerator, qemuVersion, type Accelerator, type AcceleratorChoice } from './accelerator.js';
export {
  netdevArgument,
  normalisePorts,
  findRelayProgram,
  relayCommand,
  type GuestNetworkMode,
  type PortForward,
} from './guest-network.js';
export {
  BOOT_FAIL,
  BOOT_OK,
  GUEST_FATAL,
  GUEST_PROMPT,
  KERNEL_PANIC,
  SHUTDOWN_OK,
  SerialConsole,
  type RunResult,
  type WaitResult,
} from './serial-console.js';
export {
  bootGuest,
  kernelAppend,
  qemuArguments,
  shellQuote,
  startGuest,
  type BootGuestOptions,
  type BootGuestResult,
  type GuestCommandResult,
  type GuestTerminal,
  type BootTiming,
  type GuestHandle,
  type StartGuestOptions,
  type StopResult,
} from './run-guest.js';
export { GPT_TYPES, readGptDisk, writeGptDisk, type GptDiskOptions, type GptPartition, type GptPartitionSpec } from './gpt-disk.js';
export { makeEspImage, type EspFile, type EspImageOptions } from './esp-image.js';
export {
  SYSTEM_PARTITIONS,
  UEFI_FILES,
  buildUefiDisk,
  buildSystemDiskFromArtifacts,
  LOADER_PINS,
  resolveLoader,
  ensureEfiVars,
  type SlotContents,
  type UefiDiskOptions,
  type SystemDiskFromArtifactsOptions,
  type UefiDiskResult,
} from './uefi-disk.js';
