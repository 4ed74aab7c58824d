/**
 * What each backend sees (munmap, madvise, mremap, MAP_FIXED, mprotect,
 * writeback, reclaim, swap-out, migration, fork/COW), measured on this
 * kernel: the userfaultfd backend, and the device where it exists.
 */
import { tableSuite } from "./ummunotify_table_suite.ts";

tableSuite("userfaultfd");
tableSuite("device");
