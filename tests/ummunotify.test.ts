/**
 * ummunotify on the host: the driver's semantics (tests/ummunotify_suite.ts)
 * against the userfaultfd backend, and against /dev/ummunotify when this
 * kernel has it (else skipped with the reason).
 */
import { semanticSuite } from "./ummunotify_suite.ts";

semanticSuite("userfaultfd");
semanticSuite("device");
