/**
 * Every ABI number in ffi/ checked against the kernel's own headers.
 *
 * The table below lists, per ffi module, (TS export, C expression) pairs grouped
 * by the headers that define them. For each module present the test imports it,
 * collects every exported number (plain numbers and bigints, the numeric values
 * of exported objects such as UFFD_MSG_OFF, the entries of number -> name maps
 * such as ERRNO_NAMES), generates one C probe per header group that prints the
 * C value of each exported entry, compiles it with `cc`, and compares. It fails
 *
 * - when an exported number differs from the header's,
 * - when an exported number has no row in the table (and is not in that
 *   module's `allow` list, with a reason), so new constants can't land unchecked,
 * - when an ffi/*.ts file is neither in TABLE nor in NOT_ABI.
 *
 * Rows whose TS name the module does not export are not compiled, so the table
 * may name more than a module has today (perf_event.h, user_events.h, the
 * ummunotify header).
 *
 * Headers: the Linux 6.12 UAPI headers of ../shared/vm/uapi-6.12.tar.xz,
 * extracted once into .cache/uapi-6.12/ (gitignored), on top of the system's
 * glibc headers. Without the tarball (or with UMMU_ABI_HEADERS=system) the
 * system's /usr/include is used: what it lacks is skipped with a reason. With
 * the 6.12 headers a missing kernel macro is a failure. `$CC` overrides `cc`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { arch, tmpdir } from "node:os";
import { join } from "node:path";

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

interface CheckOpts {
  /**
   * C preprocessor condition under which the header has the value. Default:
   * `defined(X)` when the C expression is a bare identifier X, else `1`. Enum
   * constants need `guard: "1"` (see `enums`).
   */
  guard?: string;
  /** A value pinned by the test itself (our own headers: both sides must equal it). */
  expect?: number | bigint;
}
/** [TS path, C expression, options]. TS paths: `NAME`, `OBJ.key`, `MAP[value]`, `fn(1,2)`. */
type Check = readonly [ts: string, c: string, opts?: CheckOpts];

interface Unit {
  /** How the test names this header group. */
  header: string;
  /** uapi: kernel UAPI headers; libc: glibc's; local: a header of this repo. */
  source: "uapi" | "libc" | "local";
  /** `<x.h>`, or a repo-relative path (the unit is skipped while it doesn't exist). */
  includes: string[];
  defines?: string[];
  /** Only on this os.arch(): the syscall tables are per architecture. */
  arch?: string;
  checks: Check[];
}

interface ModuleSpec {
  file: string;
  units: Unit[];
  /** Exported numbers no header can check, each with the reason. */
  allow?: Record<string, string>;
}

/** Whitespace-separated names. */
const w = (s: TemplateStringsArray): string[] => s.raw[0].trim().split(/\s+/);
const same = (...names: string[]): Check[] => names.map((n) => [n, n] as const);
const enums = (...names: string[]): Check[] => names.map((n) => [n, n, { guard: "1" }] as const);
const offsets = (
  obj: string,
  type: string,
  fields: Record<string, string> | string[],
  opts?: CheckOpts,
): Check[] =>
  (Array.isArray(fields) ? fields.map((f) => [f, f]) : Object.entries(fields)).map((
    [k, f],
  ) => [`${obj}.${k}`, `offsetof(${type}, ${f})`, opts] as const);
const since = (a: number, b: number) => `LINUX_VERSION_CODE >= KERNEL_VERSION(${a},${b},0)`;

/** The syscall-number units: x86_64 <asm/unistd_64.h>, arm64 = <asm-generic/unistd.h>. */
const syscallUnits = (x64: Check[], arm64: Check[]): Unit[] => [
  {
    header: "<asm/unistd_64.h> (x86_64)",
    source: "uapi",
    arch: "x64",
    includes: ["<asm/unistd_64.h>"],
    checks: x64,
  },
  {
    header: "<asm-generic/unistd.h> (arm64's table)",
    source: "uapi",
    includes: ["<asm-generic/unistd.h>"],
    checks: arm64,
  },
];

const UFFD_OFFSET_CANDIDATES: Check[] = [
  ...offsets("UFFDIO_API_OFF", "struct uffdio_api", ["api", "features", "ioctls"]),
  ...offsets("UFFDIO_RANGE_OFF", "struct uffdio_range", ["start", "len"]),
  ...offsets("UFFDIO_REGISTER_OFF", "struct uffdio_register", ["range", "mode", "ioctls"]),
  ...offsets("UFFDIO_COPY_OFF", "struct uffdio_copy", ["dst", "src", "len", "mode", "copy"]),
  ...offsets("UFFDIO_ZEROPAGE_OFF", "struct uffdio_zeropage", ["range", "mode", "zeropage"]),
  ...offsets("UFFDIO_MOVE_OFF", "struct uffdio_move", ["dst", "src", "len", "mode", "move"], {
    guard: "defined(UFFDIO_MOVE)",
  }),
  ...offsets("UFFDIO_WRITEPROTECT_OFF", "struct uffdio_writeprotect", ["range", "mode"]),
  ...offsets("UFFDIO_CONTINUE_OFF", "struct uffdio_continue", ["range", "mode", "mapped"]),
  ...offsets("UFFDIO_POISON_OFF", "struct uffdio_poison", ["range", "mode", "updated"], {
    guard: "defined(UFFDIO_POISON)",
  }),
];

const MADV = w`
  MADV_NORMAL MADV_RANDOM MADV_SEQUENTIAL MADV_WILLNEED MADV_DONTNEED MADV_FREE MADV_REMOVE
  MADV_DONTFORK MADV_DOFORK MADV_MERGEABLE MADV_UNMERGEABLE MADV_HUGEPAGE MADV_NOHUGEPAGE
  MADV_DONTDUMP MADV_DODUMP MADV_WIPEONFORK MADV_KEEPONFORK MADV_COLD MADV_PAGEOUT
  MADV_POPULATE_READ MADV_POPULATE_WRITE MADV_DONTNEED_LOCKED MADV_COLLAPSE MADV_HWPOISON
  MADV_SOFT_OFFLINE
`;
const MMAN_COMMON = [
  ...w`
    PROT_NONE PROT_READ PROT_WRITE PROT_EXEC MAP_SHARED MAP_PRIVATE MAP_SHARED_VALIDATE MAP_FIXED
    MAP_ANONYMOUS MAP_NORESERVE MAP_POPULATE MAP_LOCKED MAP_GROWSDOWN MAP_STACK MAP_HUGETLB
    MAP_FIXED_NOREPLACE MAP_HUGE_SHIFT MREMAP_MAYMOVE MREMAP_FIXED MREMAP_DONTUNMAP
  `,
  ...MADV,
  ...w`
    MFD_CLOEXEC MFD_ALLOW_SEALING MFD_HUGETLB MFD_NOEXEC_SEAL MFD_EXEC O_RDONLY O_WRONLY O_RDWR
    O_CREAT O_EXCL O_TRUNC O_APPEND O_NONBLOCK O_DIRECTORY O_CLOEXEC POLLIN POLLPRI POLLOUT
    POLLERR POLLHUP POLLNVAL
  `,
];
const POLLFD: Check[] = [
  ["SIZEOF_POLLFD", "sizeof(struct pollfd)"],
  ...offsets("POLLFD_OFF", "struct pollfd", ["fd", "events", "revents"]),
];

/** Linux errno names, <asm-generic/errno-base.h> and <asm-generic/errno.h> (aliases left out). */
const ERRNO = w`
  EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
  ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY EFBIG
  ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS ENOTEMPTY ELOOP
  ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT EBADE EBADR EXFULL
  ENOANO EBADRQC EBADSLT EBFONT ENOSTR ENODATA ETIME ENOSR ENONET ENOPKG EREMOTE ENOLINK EADV
  ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD
  ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE
  EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT
  EADDRINUSE EADDRNOTAVAIL ENETDOWN ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN
  ENOTCONN ESHUTDOWN ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY
  EINPROGRESS ESTALE EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE
  ECANCELED ENOKEY EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL
  EHWPOISON
`;

/** Bitfields of perf_event_attr's flags word (the u64 after read_format). */
const PERF_ATTR_BITS = w`
  disabled inherit pinned exclusive exclude_user exclude_kernel exclude_hv exclude_idle mmap comm
  freq inherit_stat enable_on_exec task watermark mmap_data sample_id_all exclude_host
  exclude_guest exclude_callchain_kernel exclude_callchain_user mmap2 comm_exec use_clockid
  context_switch write_backward namespaces ksymbol bpf_event aux_output cgroup text_poke build_id
  inherit_thread remove_on_exec sigtrap
`;
const PERF_FLAGS_WORD = "(offsetof(struct perf_event_attr, read_format) + sizeof(__u64))";

const TABLE: ModuleSpec[] = [
  {
    file: "userfaultfd.ts",
    units: [
      {
        header: "<linux/userfaultfd.h>",
        source: "uapi",
        // The header uses _IOWR etc. without including <linux/ioctl.h> (user space has <sys/ioctl.h>).
        includes: ["<linux/ioctl.h>", "<linux/userfaultfd.h>"],
        checks: [
          ...same(...w`
            UFFD_API UFFDIO USERFAULTFD_IOC USERFAULTFD_IOC_NEW UFFD_USER_MODE_ONLY
            _UFFDIO_REGISTER _UFFDIO_UNREGISTER _UFFDIO_WAKE _UFFDIO_COPY _UFFDIO_ZEROPAGE
            _UFFDIO_MOVE _UFFDIO_WRITEPROTECT _UFFDIO_CONTINUE _UFFDIO_POISON _UFFDIO_API
            UFFDIO_API UFFDIO_REGISTER UFFDIO_UNREGISTER UFFDIO_WAKE UFFDIO_COPY UFFDIO_ZEROPAGE
            UFFDIO_MOVE UFFDIO_WRITEPROTECT UFFDIO_CONTINUE UFFDIO_POISON UFFD_EVENT_PAGEFAULT
            UFFD_EVENT_FORK UFFD_EVENT_REMAP UFFD_EVENT_REMOVE UFFD_EVENT_UNMAP
            UFFD_PAGEFAULT_FLAG_WRITE UFFD_PAGEFAULT_FLAG_WP UFFD_PAGEFAULT_FLAG_MINOR
            UFFD_FEATURE_PAGEFAULT_FLAG_WP UFFD_FEATURE_EVENT_FORK UFFD_FEATURE_EVENT_REMAP
            UFFD_FEATURE_EVENT_REMOVE UFFD_FEATURE_MISSING_HUGETLBFS UFFD_FEATURE_MISSING_SHMEM
            UFFD_FEATURE_EVENT_UNMAP UFFD_FEATURE_SIGBUS UFFD_FEATURE_THREAD_ID
            UFFD_FEATURE_MINOR_HUGETLBFS UFFD_FEATURE_MINOR_SHMEM UFFD_FEATURE_EXACT_ADDRESS
            UFFD_FEATURE_WP_HUGETLBFS_SHMEM UFFD_FEATURE_WP_UNPOPULATED UFFD_FEATURE_POISON
            UFFD_FEATURE_WP_ASYNC UFFD_FEATURE_MOVE UFFDIO_REGISTER_MODE_MISSING
            UFFDIO_REGISTER_MODE_WP UFFDIO_REGISTER_MODE_MINOR UFFDIO_COPY_MODE_DONTWAKE
            UFFDIO_COPY_MODE_WP UFFDIO_ZEROPAGE_MODE_DONTWAKE UFFDIO_WRITEPROTECT_MODE_WP
            UFFDIO_WRITEPROTECT_MODE_DONTWAKE UFFDIO_CONTINUE_MODE_DONTWAKE
            UFFDIO_CONTINUE_MODE_WP UFFDIO_POISON_MODE_DONTWAKE UFFDIO_MOVE_MODE_DONTWAKE
            UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
          `),
          ["SIZEOF_UFFDIO_API", "sizeof(struct uffdio_api)"],
          ["SIZEOF_UFFDIO_RANGE", "sizeof(struct uffdio_range)"],
          ["SIZEOF_UFFDIO_REGISTER", "sizeof(struct uffdio_register)"],
          ["SIZEOF_UFFDIO_COPY", "sizeof(struct uffdio_copy)"],
          ["SIZEOF_UFFDIO_ZEROPAGE", "sizeof(struct uffdio_zeropage)"],
          ["SIZEOF_UFFDIO_MOVE", "sizeof(struct uffdio_move)", { guard: "defined(UFFDIO_MOVE)" }],
          ["SIZEOF_UFFDIO_WRITEPROTECT", "sizeof(struct uffdio_writeprotect)"],
          ["SIZEOF_UFFDIO_CONTINUE", "sizeof(struct uffdio_continue)"],
          ["SIZEOF_UFFDIO_POISON", "sizeof(struct uffdio_poison)", {
            guard: "defined(UFFDIO_POISON)",
          }],
          ["SIZEOF_UFFD_MSG", "sizeof(struct uffd_msg)"],
          ...offsets("UFFD_MSG_OFF", "struct uffd_msg", {
            event: "event",
            pagefault_flags: "arg.pagefault.flags",
            pagefault_address: "arg.pagefault.address",
            pagefault_ptid: "arg.pagefault.feat.ptid",
            fork_ufd: "arg.fork.ufd",
            remap_from: "arg.remap.from",
            remap_to: "arg.remap.to",
            remap_len: "arg.remap.len",
            remove_start: "arg.remove.start",
            remove_end: "arg.remove.end",
          }),
          ...UFFD_OFFSET_CANDIDATES,
        ],
      },
      ...syscallUnits(
        [["NR_userfaultfd.x64", "__NR_userfaultfd"], ["__NR_userfaultfd", "__NR_userfaultfd"]],
        [["NR_userfaultfd.arm64", "__NR_userfaultfd"]],
      ),
    ],
  },
  {
    file: "fs.ts",
    units: [{
      header: "<linux/fs.h>",
      source: "uapi",
      includes: ["<linux/fs.h>"],
      checks: [
        ...same("PAGEMAP_SCAN", "PM_SCAN_WP_MATCHING", "PM_SCAN_CHECK_WPASYNC", "PM_SCAN_FLAGS"),
        ...same(...w`
          PAGE_IS_WPALLOWED PAGE_IS_WRITTEN PAGE_IS_FILE PAGE_IS_PRESENT PAGE_IS_SWAPPED
          PAGE_IS_PFNZERO PAGE_IS_HUGE PAGE_IS_SOFT_DIRTY PAGE_IS_GUARD
        `),
        ["SIZEOF_PM_SCAN_ARG", "sizeof(struct pm_scan_arg)", { guard: "defined(PAGEMAP_SCAN)" }],
        ["SIZEOF_PAGE_REGION", "sizeof(struct page_region)", { guard: "defined(PAGEMAP_SCAN)" }],
        ...offsets(
          "PM_SCAN_ARG_OFF",
          "struct pm_scan_arg",
          w`
          size flags start end walk_end vec vec_len max_pages category_inverted category_mask
          category_anyof_mask return_mask
        `,
          { guard: "defined(PAGEMAP_SCAN)" },
        ),
        ...offsets("PAGE_REGION_OFF", "struct page_region", ["start", "end", "categories"], {
          guard: "defined(PAGEMAP_SCAN)",
        }),
      ],
    }],
  },
  {
    file: "mman.ts",
    units: [
      {
        header: "glibc <sys/mman.h> <fcntl.h> <poll.h> <sys/eventfd.h> <unistd.h>",
        source: "libc",
        defines: ["_GNU_SOURCE"],
        includes: ["<sys/mman.h>", "<fcntl.h>", "<poll.h>", "<sys/eventfd.h>", "<unistd.h>"],
        checks: [
          ...same(...MMAN_COMMON),
          ...same("EFD_CLOEXEC", "EFD_NONBLOCK", "EFD_SEMAPHORE"),
          ...same("_SC_PAGESIZE", "_SC_PAGE_SIZE", "_SC_NPROCESSORS_ONLN"),
          ...POLLFD,
        ],
      },
      {
        header: "<linux/mman.h> <linux/memfd.h> <linux/fcntl.h> <linux/poll.h>",
        source: "uapi",
        includes: ["<linux/mman.h>", "<linux/memfd.h>", "<linux/fcntl.h>", "<linux/poll.h>"],
        // The kernel's own values of what mman.ts hands to glibc (checked above too).
        checks: [...same(...MMAN_COMMON), ...POLLFD],
      },
    ],
  },
  {
    file: "ioctl.ts",
    units: [{
      header: "<linux/ioctl.h>",
      source: "uapi",
      includes: ["<linux/ioctl.h>"],
      checks: [
        ...same(...w`
          _IOC_NONE _IOC_WRITE _IOC_READ _IOC_NRBITS _IOC_TYPEBITS _IOC_SIZEBITS _IOC_DIRBITS
          _IOC_NRSHIFT _IOC_TYPESHIFT _IOC_SIZESHIFT _IOC_DIRSHIFT
        `),
        // Samples of the encoders (the macros take a type: char[N] has size N).
        ["_IO(0xaa,0)", "_IO(0xaa, 0)"],
        ["_IO(0x24,5)", "_IO(0x24, 5)"],
        ["_IOR(0xaa,1,16)", "_IOR(0xaa, 1, char[16])"],
        ["_IOR(0x24,7,8)", "_IOR(0x24, 7, char[8])"],
        ["_IOW(0x55,2,32)", "_IOW(0x55, 2, char[32])"],
        ["_IOW(0x2a,2,8)", "_IOW(0x2a, 2, char[8])"],
        ["_IOWR(0xaa,0x3f,24)", "_IOWR(0xaa, 0x3f, char[24])"],
        ["_IOWR(0x66,16,96)", "_IOWR(0x66, 16, char[96])"],
        ["_IOWR(0xff,0xff,16383)", "_IOWR(0xff, 0xff, char[16383])"],
        ["_IOC(1,0x24,6,8)", "_IOC(1, 0x24, 6, 8)"],
        ["_IOC(3,0,0,0)", "_IOC(_IOC_READ | _IOC_WRITE, 0, 0, 0)"],
      ],
    }],
  },
  {
    file: "errno.ts",
    units: [{
      header: "<errno.h>",
      source: "libc",
      includes: ["<errno.h>"],
      checks: ERRNO.map((n) => [`ERRNO_NAMES[${n}]`, n] as const),
    }],
  },
  {
    file: "user_events.ts",
    units: [{
      header: "<linux/user_events.h>",
      source: "uapi",
      includes: ["<linux/user_events.h>"],
      checks: [
        ...same("DIAG_IOC_MAGIC", "DIAG_IOCSREG", "DIAG_IOCSDEL", "DIAG_IOCSUNREG"),
        ...same("USER_EVENTS_SYSTEM", "USER_EVENTS_MULTI_SYSTEM", "USER_EVENTS_PREFIX"),
        ["USER_EVENT_REG_PERSIST", "USER_EVENT_REG_PERSIST", { guard: since(6, 5) }],
        ["USER_EVENT_REG_MULTI_FORMAT", "USER_EVENT_REG_MULTI_FORMAT", { guard: since(6, 10) }],
        ["USER_EVENT_REG_MAX", "USER_EVENT_REG_MAX", { guard: since(6, 10) }],
        ["SIZEOF_USER_REG", "sizeof(struct user_reg)"],
        ...offsets(
          "USER_REG_OFF",
          "struct user_reg",
          w`
          size enable_bit enable_size flags enable_addr name_args write_index
        `,
        ),
        ["SIZEOF_USER_UNREG", "sizeof(struct user_unreg)"],
        ...offsets(
          "USER_UNREG_OFF",
          "struct user_unreg",
          w`
          size disable_bit __reserved __reserved2 disable_addr
        `,
        ),
        ["DYN_LOC(16,12)", "(__u32)DYN_LOC(16, 12)", { guard: "defined(DYN_LOC)" }],
        ["DYN_LOC(4096,32767)", "(__u32)DYN_LOC(4096, 32767)", { guard: "defined(DYN_LOC)" }],
      ],
    }],
    allow: {
      SIZEOF_TRACE_ENTRY:
        "struct trace_entry is kernel-internal (include/linux/trace_events.h), not UAPI; the common_* fields of a tracefs format file are the runtime truth",
      MAX_EVENT_DESC: "a limit of kernel/trace/trace_events_user.c, in no header",
      MAX_FIELD_ARRAY_SIZE: "a limit of kernel/trace/trace_events_user.c, in no header",
    },
  },
  {
    file: "perf_event.ts",
    units: [
      {
        header: "<linux/perf_event.h>",
        source: "uapi",
        includes: ["<linux/perf_event.h>"],
        checks: [
          ...enums(...w`
            PERF_TYPE_HARDWARE PERF_TYPE_SOFTWARE PERF_TYPE_TRACEPOINT PERF_TYPE_HW_CACHE
            PERF_TYPE_RAW PERF_TYPE_BREAKPOINT PERF_COUNT_SW_CPU_CLOCK PERF_COUNT_SW_TASK_CLOCK
            PERF_COUNT_SW_PAGE_FAULTS PERF_COUNT_SW_CONTEXT_SWITCHES PERF_COUNT_SW_CPU_MIGRATIONS
            PERF_COUNT_SW_PAGE_FAULTS_MIN PERF_COUNT_SW_PAGE_FAULTS_MAJ
            PERF_COUNT_SW_ALIGNMENT_FAULTS PERF_COUNT_SW_EMULATION_FAULTS PERF_COUNT_SW_DUMMY
            PERF_COUNT_SW_BPF_OUTPUT PERF_COUNT_SW_CGROUP_SWITCHES PERF_SAMPLE_IP PERF_SAMPLE_TID
            PERF_SAMPLE_TIME PERF_SAMPLE_ADDR PERF_SAMPLE_READ PERF_SAMPLE_CALLCHAIN
            PERF_SAMPLE_ID PERF_SAMPLE_CPU PERF_SAMPLE_PERIOD PERF_SAMPLE_STREAM_ID
            PERF_SAMPLE_RAW PERF_SAMPLE_BRANCH_STACK PERF_SAMPLE_REGS_USER PERF_SAMPLE_STACK_USER
            PERF_SAMPLE_WEIGHT PERF_SAMPLE_DATA_SRC PERF_SAMPLE_IDENTIFIER PERF_SAMPLE_TRANSACTION
            PERF_SAMPLE_REGS_INTR PERF_SAMPLE_PHYS_ADDR PERF_SAMPLE_AUX PERF_SAMPLE_CGROUP
            PERF_SAMPLE_DATA_PAGE_SIZE PERF_SAMPLE_CODE_PAGE_SIZE PERF_SAMPLE_WEIGHT_STRUCT
            PERF_FORMAT_TOTAL_TIME_ENABLED PERF_FORMAT_TOTAL_TIME_RUNNING PERF_FORMAT_ID
            PERF_FORMAT_GROUP PERF_FORMAT_LOST PERF_RECORD_MMAP PERF_RECORD_LOST PERF_RECORD_COMM
            PERF_RECORD_EXIT PERF_RECORD_THROTTLE PERF_RECORD_UNTHROTTLE PERF_RECORD_FORK
            PERF_RECORD_READ PERF_RECORD_SAMPLE PERF_RECORD_MMAP2 PERF_RECORD_AUX
            PERF_RECORD_ITRACE_START PERF_RECORD_LOST_SAMPLES PERF_RECORD_SWITCH
            PERF_RECORD_SWITCH_CPU_WIDE PERF_RECORD_NAMESPACES PERF_RECORD_KSYMBOL
            PERF_RECORD_BPF_EVENT PERF_RECORD_CGROUP PERF_RECORD_TEXT_POKE
            PERF_RECORD_AUX_OUTPUT_HW_ID PERF_RECORD_MISC_CPUMODE_MASK PERF_RECORD_MISC_KERNEL
            PERF_RECORD_MISC_USER PERF_IOC_FLAG_GROUP
          `),
          ...same(...w`
            PERF_ATTR_SIZE_VER0 PERF_ATTR_SIZE_VER1 PERF_ATTR_SIZE_VER2 PERF_ATTR_SIZE_VER3
            PERF_ATTR_SIZE_VER4 PERF_ATTR_SIZE_VER5 PERF_ATTR_SIZE_VER6 PERF_ATTR_SIZE_VER7
            PERF_ATTR_SIZE_VER8 PERF_FLAG_FD_NO_GROUP PERF_FLAG_FD_OUTPUT PERF_FLAG_PID_CGROUP
            PERF_FLAG_FD_CLOEXEC PERF_EVENT_IOC_ENABLE PERF_EVENT_IOC_DISABLE
            PERF_EVENT_IOC_REFRESH PERF_EVENT_IOC_RESET PERF_EVENT_IOC_PERIOD
            PERF_EVENT_IOC_SET_OUTPUT PERF_EVENT_IOC_SET_FILTER PERF_EVENT_IOC_ID
            PERF_EVENT_IOC_SET_BPF PERF_EVENT_IOC_PAUSE_OUTPUT PERF_EVENT_IOC_QUERY_BPF
            PERF_EVENT_IOC_MODIFY_ATTRIBUTES
          `),
          // What ffi/perf_event.ts calls the struct is PERF_ATTR_SIZE_VER8 (Linux 6.3+).
          ["SIZEOF_PERF_EVENT_ATTR", "sizeof(struct perf_event_attr)", {
            guard: "defined(PERF_ATTR_SIZE_VER8)",
          }],
          ["SIZEOF_PERF_EVENT_HEADER", "sizeof(struct perf_event_header)"],
          ["SIZEOF_PERF_EVENT_MMAP_PAGE", "sizeof(struct perf_event_mmap_page)"],
          ...offsets(
            "PERF_EVENT_ATTR_OFF",
            "struct perf_event_attr",
            w`
            type size config sample_period sample_freq sample_type read_format wakeup_events
            wakeup_watermark bp_type bp_addr kprobe_func uprobe_path config1 bp_len kprobe_addr
            probe_offset config2 branch_sample_type sample_regs_user sample_stack_user clockid
            sample_regs_intr aux_watermark sample_max_stack aux_sample_size
          `,
          ),
          // The bitfield word has no name: it is the u64 after read_format.
          ["PERF_EVENT_ATTR_OFF.flags", PERF_FLAGS_WORD],
          // sig_data: 5.13 (VER7); config3: 6.3 (VER8); aux_action: 6.13, in the 6.12.y headers.
          ["PERF_EVENT_ATTR_OFF.sig_data", "offsetof(struct perf_event_attr, sig_data)", {
            guard: "defined(PERF_ATTR_SIZE_VER7)",
          }],
          ["PERF_EVENT_ATTR_OFF.config3", "offsetof(struct perf_event_attr, config3)", {
            guard: "defined(PERF_ATTR_SIZE_VER8)",
          }],
          ["PERF_EVENT_ATTR_OFF.aux_action", "offsetof(struct perf_event_attr, aux_action)", {
            guard: since(6, 12),
          }],
          // PERF_ATTR_FLAG_DISABLED etc.: the bit the header's bitfield sets in that word.
          ...PERF_ATTR_BITS.map((f) =>
            [
              `PERF_ATTR_FLAG_${f.toUpperCase()}`,
              `BITFIELD_MASK(struct perf_event_attr, ${f}, ${PERF_FLAGS_WORD})`,
              { guard: "1" },
            ] as const
          ),
          ...offsets(
            "PERF_MMAP_PAGE_OFF",
            "struct perf_event_mmap_page",
            w`
            version compat_version lock index offset time_enabled time_running capabilities
            pmc_width time_shift time_mult time_offset time_zero size time_cycles time_mask
            data_head data_tail data_offset data_size aux_head aux_tail aux_offset aux_size
          `,
          ),
          ...offsets("PERF_EVENT_HEADER_OFF", "struct perf_event_header", [
            "type",
            "misc",
            "size",
          ]),
        ],
      },
      ...syscallUnits(
        [
          ["__NR_perf_event_open_x86_64", "__NR_perf_event_open"],
          ["NR_perf_event_open.x64", "__NR_perf_event_open"],
          ["__NR_perf_event_open", "__NR_perf_event_open"],
        ],
        [
          ["__NR_perf_event_open_arm64", "__NR_perf_event_open"],
          ["NR_perf_event_open.arm64", "__NR_perf_event_open"],
        ],
      ),
    ],
  },
  {
    file: "ummunotify.ts",
    units: [{
      // Our own header (kmod/ummunotify): the numbers are also pinned to the
      // 2010 ummunotify ABI, so the header and ffi/ can't drift together.
      header: "kmod/ummunotify/ummunotify.h",
      source: "local",
      includes: ["kmod/ummunotify/ummunotify.h"],
      checks: [
        ["UMMUNOTIFY_EXCHANGE_FEATURES", "UMMUNOTIFY_EXCHANGE_FEATURES", { expect: 0xC0045501 }],
        ["UMMUNOTIFY_REGISTER_REGION", "UMMUNOTIFY_REGISTER_REGION", { expect: 0x40205502 }],
        ["UMMUNOTIFY_UNREGISTER_REGION", "UMMUNOTIFY_UNREGISTER_REGION", { expect: 0x40085503 }],
        ["UMMUNOTIFY_MAGIC", "_IOC_TYPE(UMMUNOTIFY_EXCHANGE_FEATURES)", { expect: 0x55 }],
        ["UMMUNOTIFY_EVENT_TYPE_INVAL", "UMMUNOTIFY_EVENT_TYPE_INVAL", { guard: "1", expect: 0 }],
        ["UMMUNOTIFY_EVENT_TYPE_LAST", "UMMUNOTIFY_EVENT_TYPE_LAST", { guard: "1", expect: 1 }],
        ["UMMUNOTIFY_EVENT_FLAG_HINT", "UMMUNOTIFY_EVENT_FLAG_HINT", { guard: "1", expect: 1 }],
        ["SIZEOF_UMMUNOTIFY_EVENT", "sizeof(struct ummunotify_event)", { expect: 32 }],
        ["SIZEOF_UMMUNOTIFY_REGISTER_IOCTL", "sizeof(struct ummunotify_register_ioctl)", {
          expect: 32,
        }],
        ["SIZEOF_UMMUNOTIFY_REGISTER", "sizeof(struct ummunotify_register_ioctl)", {
          expect: 32,
        }],
        ...[
          ["type", 0],
          ["flags", 4],
          ["hint_start", 8],
          ["hint_end", 16],
          ["user_cookie_counter", 24],
        ].map(([f, off]) =>
          [`UMMUNOTIFY_EVENT_OFF.${f}`, `offsetof(struct ummunotify_event, ${f})`, {
            expect: off as number,
          }] as const
        ),
        ...["UMMUNOTIFY_REGISTER_IOCTL_OFF", "UMMUNOTIFY_REGISTER_OFF"].flatMap((obj) =>
          [["start", 0], ["end", 8], ["user_cookie", 16], ["flags", 24], ["reserved", 28]].map((
            [f, off],
          ) =>
            [`${obj}.${f}`, `offsetof(struct ummunotify_register_ioctl, ${f})`, {
              expect: off as number,
            }] as const
          )
        ),
      ],
    }],
  },
];

/** ffi/*.ts files that hold no ABI numbers (the runtime boundary). */
const NOT_ABI: Record<string, string> = {
  "symbols.ts": "the libc symbol table (types, no numbers)",
  "runtime.ts": "the adapter interface",
  "deno.ts": "Deno adapter",
  "bun.ts": "Bun adapter",
  "node.ts": "Node adapter (koffi)",
  "platform.ts": "picks the adapter",
};

// ---------------------------------------------------------------------------
// Machinery
// ---------------------------------------------------------------------------

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const FFI = join(ROOT, "ffi");
const CC = (globalThis as { process?: { env: Record<string, string | undefined> } }).process
  ?.env.CC || "cc";
const FORCE_SYSTEM =
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env
    .UMMU_ABI_HEADERS === "system";

type Num = bigint;
const hex = (v: bigint) => (v < 0n ? `${v}` : `${v} (0x${v.toString(16)})`);

/** Every exported number of a module, by TS path. */
function collectNumbers(mod: Record<string, unknown>): Map<string, number | bigint> {
  const out = new Map<string, number | bigint>();
  const walk = (path: string, v: unknown, depth: number) => {
    if (typeof v === "number" || typeof v === "bigint") out.set(path, v);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(`${path}[${i}]`, x, depth + 1));
    else if (v !== null && typeof v === "object" && depth < 4) {
      const entries = Object.entries(v);
      // number -> name maps (ERRNO_NAMES): the fact is "name is number".
      if (
        entries.length > 0 && entries.every(([k, x]) => /^-?\d+$/.test(k) && typeof x === "string")
      ) {
        for (const [k, x] of entries) out.set(`${path}[${x}]`, Number(k));
      } else for (const [k, x] of entries) walk(`${path}.${k}`, x, depth + 1);
    }
  };
  for (const [k, v] of Object.entries(mod)) walk(k, v, 0);
  return out;
}

/** The TS value of a table row: an exported number or string, or a call sample; undefined if not exported. */
function tsValue(
  mod: Record<string, unknown>,
  nums: Map<string, number | bigint>,
  path: string,
): number | bigint | string | undefined {
  if (nums.has(path)) return nums.get(path);
  const call = /^(\w+)\(([^)]*)\)$/.exec(path);
  if (call) {
    const fn = mod[call[1]];
    if (typeof fn !== "function") return undefined;
    const args = call[2].split(",").map((a) => Number(a.trim()));
    return (fn as (...a: number[]) => number)(...args);
  }
  if (/^\w+$/.test(path) && typeof mod[path] === "string") return mod[path] as string;
  return undefined;
}

function toBig(v: number | bigint): bigint | undefined {
  if (typeof v === "bigint") return v;
  return Number.isSafeInteger(v) ? BigInt(v) : undefined;
}

interface Headers {
  /** -I directory, or undefined for the system's. */
  inc?: string;
  label: string;
  preferred: boolean;
  why?: string;
}

function uapiHeaders(): Headers {
  const system = (why: string): Headers => ({
    label: "system /usr/include",
    preferred: false,
    why,
  });
  if (FORCE_SYSTEM) return system("UMMU_ABI_HEADERS=system");
  if (arch() !== "x64") {
    return system(`the uapi-6.12 tarball holds x86_64 headers, this is ${arch()}`);
  }
  const dest = join(ROOT, ".cache", "uapi-6.12");
  const inc = join(dest, "include");
  const marker = join(inc, "linux", "userfaultfd.h");
  const ok: Headers = { inc, label: `uapi-6.12 (${inc})`, preferred: true };
  if (existsSync(marker)) return ok;
  const tarball = join(ROOT, "..", "shared", "vm", "uapi-6.12.tar.xz");
  if (!existsSync(tarball)) return system(`${tarball} not found`);
  mkdirSync(join(ROOT, ".cache"), { recursive: true });
  const tmp = mkdtempSync(join(ROOT, ".cache", "uapi-6.12.tmp-"));
  try {
    const r = spawnSync("tar", ["-xJf", tarball, "-C", tmp], { encoding: "utf8" });
    if (r.status !== 0) return system(`tar -xJf ${tarball}: ${r.stderr || r.error}`);
    if (existsSync(dest) && !existsSync(marker)) rmSync(dest, { recursive: true, force: true });
    try {
      renameSync(join(tmp, "uapi-6.12"), dest);
    } catch (e) {
      if (!existsSync(marker)) return system(`extracting into ${dest}: ${e}`); // else: a concurrent run won
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return existsSync(marker)
    ? ok
    : system(`${tarball} has no uapi-6.12/include/linux/userfaultfd.h`);
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { encoding: "utf8", maxBuffer: 1 << 24 },
      (e, out, err) =>
        resolve({ ok: !e, out: String(out), err: String(err || (e && e.message) || "") }),
    );
  });
}

const isIdent = (s: string) => /^[A-Za-z_]\w*$/.test(s);

interface Row {
  ts: string;
  c: string;
  guard: string;
  tsv: number | bigint | string;
  expect?: number | bigint;
}

const PRELUDE = `#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <linux/version.h>
#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + (c))
#endif
static unsigned long long bitfield_word(const void *p, size_t off)
{
	unsigned long long w;
	memcpy(&w, (const char *)p + off, sizeof w);
	return w;
}
/* The bits that setting a one-bit bitfield sets in the 64-bit word at byte off. */
#define BITFIELD_MASK(T, field, off) __extension__({ T a_; memset(&a_, 0, sizeof a_); \\
	a_.field = 1; bitfield_word(&a_, (off)); })
`;

function probeSource(unit: Unit, rows: Row[]): string {
  const lines: string[] = [];
  for (const d of unit.defines ?? []) lines.push(`#define ${d} 1`);
  lines.push(PRELUDE);
  for (const h of unit.includes) {
    lines.push(h.startsWith("<") ? `#include ${h}` : `#include "${join(ROOT, h)}"`);
  }
  lines.push("int main(void)", "{");
  rows.forEach((r, i) => {
    lines.push(`#if ${r.guard}`);
    lines.push(
      typeof r.tsv === "string"
        ? `\tprintf("${i} s%s\\n", ${r.c});`
        : `\tprintf("${i} %llu\\n", (unsigned long long)(${r.c}));`,
    );
    lines.push("#else", `\tprintf("${i} ?\\n");`, "#endif");
  });
  lines.push("\treturn 0;", "}", "");
  return lines.join("\n");
}

// ---------------------------------------------------------------------------
// Compile and run everything up front; the tests below only compare.
// ---------------------------------------------------------------------------

type UnitResult =
  | { kind: "skip"; reason: string }
  | { kind: "compile-error"; error: string }
  | {
    kind: "ran";
    compared: { row: Row; c: string }[];
    missing: Row[];
  };

interface ModuleResult {
  spec: ModuleSpec;
  present: boolean;
  importError?: string;
  nums: Map<string, number | bigint>;
  unchecked: string[];
  staleAllow: string[];
  units: { unit: Unit; rows: Row[]; result?: UnitResult }[];
}

const headers = uapiHeaders();
const ccVersion = await run(CC, ["--version"]);
let noCompiler: string | undefined = ccVersion.ok
  ? undefined
  : `no C compiler: ${CC} --version failed (${ccVersion.err.trim().split("\n")[0]})`;
const work = mkdtempSync(join(tmpdir(), "ummu-abi-"));
const incArgs = headers.inc ? ["-I", headers.inc] : [];

let linuxVersion = "?";
let glibcVersion = "?";
if (!noCompiler) {
  const src = join(work, "meta.c");
  writeFileSync(
    src,
    `#include <stdio.h>\n#include <linux/version.h>\nint main(void)\n{\n` +
      `\tprintf("%d.%d.%d\\n", LINUX_VERSION_CODE >> 16, (LINUX_VERSION_CODE >> 8) & 255, LINUX_VERSION_CODE & 255);\n` +
      `#ifdef __GLIBC__\n\tprintf("%d.%d\\n", __GLIBC__, __GLIBC_MINOR__);\n#else\n\tprintf("none\\n");\n#endif\n` +
      `\treturn 0;\n}\n`,
  );
  const bin = join(work, "meta");
  const c = await run(CC, [...incArgs, "-o", bin, src]);
  const r = c.ok ? await run(bin, []) : c;
  if (!r.ok) noCompiler = `${CC} cannot build a probe: ${r.err.trim()}`;
  else [linuxVersion, glibcVersion] = r.out.trim().split("\n");
}
const kernelLabel = `${headers.label}, Linux ${linuxVersion}`;
const libcLabel = `glibc ${glibcVersion} (/usr/include)`;

function sourceLabel(u: Unit): string {
  return u.source === "libc"
    ? libcLabel
    : u.source === "local"
    ? join(ROOT, u.includes[0])
    : kernelLabel;
}

const ffiFiles = readdirSync(FFI).filter((f) => f.endsWith(".ts")).sort();
const unclassified = ffiFiles.filter((f) => !(f in NOT_ABI) && !TABLE.some((s) => s.file === f));

const modules: ModuleResult[] = [];
for (const spec of TABLE) {
  const m: ModuleResult = {
    spec,
    present: existsSync(join(FFI, spec.file)),
    nums: new Map(),
    unchecked: [],
    staleAllow: [],
    units: [],
  };
  modules.push(m);
  if (!m.present) continue;
  let mod: Record<string, unknown>;
  try {
    mod = await import(new URL(`../ffi/${spec.file}`, import.meta.url).href);
  } catch (e) {
    m.importError = String(e);
    continue;
  }
  m.nums = collectNumbers(mod);
  const named = new Set(spec.units.flatMap((u) => u.checks.map(([ts]) => ts)));
  const allow = spec.allow ?? {};
  m.unchecked = [...m.nums.keys()].filter((k) => !named.has(k) && !(k in allow));
  m.staleAllow = Object.keys(allow).filter((k) => !m.nums.has(k));
  for (const unit of spec.units) {
    const rows: Row[] = [];
    for (const [ts, c, opts] of unit.checks) {
      const tsv = tsValue(mod, m.nums, ts);
      if (tsv === undefined) continue;
      rows.push({
        ts,
        c,
        tsv,
        guard: opts?.guard ?? (isIdent(c) ? `defined(${c})` : "1"),
        expect: opts?.expect,
      });
    }
    m.units.push({ unit, rows });
  }
}

async function runUnit(unit: Unit, rows: Row[], id: string): Promise<UnitResult> {
  if (noCompiler) return { kind: "skip", reason: noCompiler };
  if (unit.arch && unit.arch !== arch()) {
    return { kind: "skip", reason: `${unit.header} is ${unit.arch}'s table, this is ${arch()}` };
  }
  for (const h of unit.includes) {
    if (!h.startsWith("<") && !existsSync(join(ROOT, h))) {
      return { kind: "skip", reason: `${h} not present` };
    }
  }
  // A missing kernel header (e.g. <linux/user_events.h> before 6.4): skip, with the version.
  const check = join(work, `${id}-has.c`);
  writeFileSync(
    check,
    (unit.defines ?? []).map((d) => `#define ${d} 1\n`).join("") +
      unit.includes.filter((h) => h.startsWith("<")).map((h) =>
        `#if !__has_include(${h})\n#error missing ${h}\n#endif\n`
      ).join("") + "int main(void) { return 0; }\n",
  );
  const has = await run(CC, [...incArgs, "-fsyntax-only", check]);
  if (!has.ok) {
    const missing = [...new Set([...has.err.matchAll(/missing (<[^>]+>)/g)].map((x) => x[1]))];
    if (
      missing.length > 0 && unit.source !== "local" &&
      !(headers.preferred && unit.source === "uapi")
    ) {
      return { kind: "skip", reason: `${missing.join(" ")} not in ${sourceLabel(unit)}` };
    }
    return { kind: "compile-error", error: has.err };
  }
  const src = join(work, `${id}.c`);
  const bin = join(work, id);
  writeFileSync(src, probeSource(unit, rows));
  const c = await run(CC, [
    "-std=gnu11",
    "-Werror=implicit-function-declaration",
    ...incArgs,
    "-o",
    bin,
    src,
  ]);
  if (!c.ok) return { kind: "compile-error", error: c.err };
  const r = await run(bin, []);
  if (!r.ok) return { kind: "compile-error", error: `probe failed: ${r.err}` };
  const byId = new Map<number, string>();
  for (const line of r.out.split("\n")) {
    const sp = line.indexOf(" ");
    if (sp > 0) byId.set(Number(line.slice(0, sp)), line.slice(sp + 1));
  }
  const compared: { row: Row; c: string }[] = [];
  const missing: Row[] = [];
  rows.forEach((row, i) => {
    const v = byId.get(i);
    if (v === undefined) throw new Error(`probe ${id} printed nothing for ${row.ts}`);
    if (v === "?") missing.push(row);
    else compared.push({ row, c: v });
  });
  return { kind: "ran", compared, missing };
}

try {
  await Promise.all(modules.flatMap((m, mi) =>
    m.units.map(async (u, ui) => {
      if (u.rows.length > 0) u.result = await runUnit(u.unit, u.rows, `m${mi}u${ui}`);
    })
  ));
} finally {
  rmSync(work, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

let nCompared = 0;
let nSkipped = 0;
const covered = new Set<string>();
for (const m of modules) {
  for (const u of m.units) {
    if (u.result?.kind === "ran") {
      nCompared += u.result.compared.length;
      for (const { row } of u.result.compared) {
        if (m.nums.has(row.ts)) covered.add(`${m.spec.file}:${row.ts}`);
      }
      nSkipped += u.result.missing.length;
    } else if (u.result?.kind === "skip") nSkipped += u.rows.length;
  }
}
const nExported = modules.reduce((n, m) => n + m.nums.size, 0);

const checkedAgainst = noCompiler
  ? `checked against: nothing (${noCompiler})`
  : `checked against: ${kernelLabel} + ${libcLabel}` +
    (headers.why ? ` (not uapi-6.12: ${headers.why})` : "");
console.log(`abi: ${checkedAgainst}`);
console.log(
  `abi: ${nCompared} comparisons, covering ${covered.size} of ${nExported} exported numbers` +
    (nSkipped ? ` (${nSkipped} rows not compared, see the skipped tests)` : ""),
);

test(checkedAgainst, noCompiler ? { skip: noCompiler } : {}, () => {
  assert.ok(headers.inc ?? "/usr/include");
});

test("every ffi/*.ts is in tests/abi.test.ts (TABLE or NOT_ABI)", () => {
  assert.deepEqual(
    unclassified,
    [],
    `add these to TABLE (ABI numbers) or NOT_ABI: ${unclassified}`,
  );
});

for (const m of modules) {
  const f = `ffi/${m.spec.file}`;
  if (!m.present) {
    test(`${f}: not present, nothing to check`, { skip: `${f} does not exist` }, () => {});
    continue;
  }
  test(`${f}: every exported number has a row in the ABI table (${m.nums.size})`, () => {
    assert.equal(m.importError, undefined, `importing ${f}`);
    assert.deepEqual(
      m.unchecked,
      [],
      `${f} exports numbers that tests/abi.test.ts does not check: add a row to its TABLE entry ` +
        `(or, if no header can check it, to its allow list with the reason)`,
    );
    assert.deepEqual(m.staleAllow, [], `${f}: allow-list entries for names it doesn't export`);
  });
  for (const { unit, rows, result } of m.units) {
    if (rows.length === 0 || !result) continue;
    const name = `${f} = ${unit.header}`;
    if (result.kind === "skip") {
      test(
        `${name}: ${rows.length} not checked: ${result.reason}`,
        { skip: result.reason },
        () => {},
      );
      continue;
    }
    if (result.kind === "compile-error") {
      test(`${name}: the probe compiles`, () => {
        assert.fail(`${CC} failed against ${sourceLabel(unit)}:\n${result.error}`);
      });
      continue;
    }
    // Our own header, and the 6.12 UAPI headers, must define every name ffi/ uses;
    // older system headers and glibc may lack some (skipped, with the reason).
    const mustHaveAll = unit.source === "local" || (headers.preferred && unit.source === "uapi");
    if (result.compared.length > 0 || mustHaveAll) {
      test(`${name}: ${result.compared.length} values`, () => {
        const actual: Record<string, string> = {};
        const expected: Record<string, string> = {};
        const seen = new Set<string>();
        for (const { row, c } of result.compared) {
          const key = seen.has(row.ts) ? `${row.ts} (${row.c})` : row.ts;
          seen.add(row.ts);
          if (typeof row.tsv === "string") {
            assert.ok(c.startsWith("s"), `${row.ts}: the header's ${row.c} is not a string`);
            actual[key] = JSON.stringify(row.tsv);
            expected[key] = JSON.stringify(c.slice(1));
            continue;
          }
          const ts = toBig(row.tsv);
          let cv: Num = BigInt(c);
          if (ts !== undefined && ts < 0n) cv = BigInt.asIntN(64, cv);
          actual[key] = ts === undefined ? `not an integer: ${row.tsv}` : hex(ts);
          expected[key] = hex(cv);
          if (row.expect !== undefined) {
            actual[`${key} (pinned)`] = hex(cv);
            expected[`${key} (pinned)`] = hex(BigInt(row.expect));
          }
        }
        assert.deepEqual(actual, expected, `${f} (left) vs ${sourceLabel(unit)} (right)`);
        if (mustHaveAll) {
          assert.deepEqual(
            result.missing.map((r) => r.ts),
            [],
            `not defined by ${sourceLabel(unit)}: with the 6.12 UAPI headers (or our own header) ` +
              `every kernel name ffi/ uses must be there`,
          );
        }
      });
    }
    const skippedHere = mustHaveAll ? [] : result.missing;
    if (skippedHere.length > 0) {
      const reason = `not in ${sourceLabel(unit)}` +
        (unit.source === "uapi"
          ? ": newer than these headers (the 6.12 UAPI tarball has them)"
          : "");
      test(
        `${name}: ${skippedHere.length} not checked (${
          skippedHere.map((r) => r.ts).join(", ")
        }): ${reason}`,
        { skip: reason },
        () => {},
      );
    }
  }
}

test(`summary: ${nCompared} comparisons, ${covered.size} of ${nExported} exported numbers checked`, () => {});
