// Public API of kernel/: the pinned guest kernel, busybox and module list (kernel.json) and their shape.
// Data only (DESIGN.md's layout lets kernel/ import nothing); images/kernel-packages.ts fetches,
// verifies and unpacks what this pins.

/** Where the pin file lives, relative to the repository root. */
export const KERNEL_PIN_FILE = 'kernel/kernel.json';

/** One pinned Debian binary package: fetched by name and version, accepted only with this SHA-256. */
export interface DebianPackagePin {
  package: string;
  version: string;
  arch: string;
  sha256: string;
}

/** The content of kernel.json. */
export interface KernelPin {
  format: 1;
  /** `release` names the kernel's module folder (lib/modules/RELEASE) and must prefix each module's vermagic. */
  kernel: DebianPackagePin & { release: string };
  busybox: DebianPackagePin;
  /** Loadable modules the guest init inserts; their order comes from each module's `depends=`. */
  modules: string[];
}
