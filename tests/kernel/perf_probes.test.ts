/**
 * The uprobe and kprobe tests of tests/perf_probes.test.ts, in the VM: this
 * machine's kernel has no kprobe PMU (CONFIG_KPROBE_EVENTS), the test kernel
 * has. Same tests, same file; here they must not skip for want of it.
 */
import "../perf_probes.test.ts";
