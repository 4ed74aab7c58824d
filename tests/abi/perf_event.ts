/**
 * ffi/perf_event.ts against <linux/perf_event.h> and the syscall tables.
 */
import { enums, type ModuleSpec, offsets, same, since, syscallUnits, w } from "./spec.ts";

/** Bitfields of perf_event_attr's flags word (the u64 after read_format). */
const PERF_ATTR_BITS = w`
  disabled inherit pinned exclusive exclude_user exclude_kernel exclude_hv exclude_idle mmap comm
  freq inherit_stat enable_on_exec task watermark mmap_data sample_id_all exclude_host
  exclude_guest exclude_callchain_kernel exclude_callchain_user mmap2 comm_exec use_clockid
  context_switch write_backward namespaces ksymbol bpf_event aux_output cgroup text_poke build_id
  inherit_thread remove_on_exec sigtrap
`;
const PERF_FLAGS_WORD = "(offsetof(struct perf_event_attr, read_format) + sizeof(__u64))";

export const PERF_EVENT: ModuleSpec = {
  file: "perf_event.ts",
  units: [
    {
      header: "<linux/perf_event.h>",
      source: "uapi",
      includes: ["<linux/perf_event.h>", "<linux/hw_breakpoint.h>"],
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
          PERF_COUNT_HW_CPU_CYCLES PERF_COUNT_HW_INSTRUCTIONS PERF_COUNT_HW_CACHE_REFERENCES
          PERF_COUNT_HW_CACHE_MISSES PERF_COUNT_HW_BRANCH_INSTRUCTIONS PERF_COUNT_HW_BRANCH_MISSES
          PERF_COUNT_HW_BUS_CYCLES PERF_COUNT_HW_STALLED_CYCLES_FRONTEND
          PERF_COUNT_HW_STALLED_CYCLES_BACKEND PERF_COUNT_HW_REF_CPU_CYCLES
          PERF_COUNT_HW_CACHE_L1D PERF_COUNT_HW_CACHE_L1I PERF_COUNT_HW_CACHE_LL
          PERF_COUNT_HW_CACHE_DTLB PERF_COUNT_HW_CACHE_ITLB PERF_COUNT_HW_CACHE_BPU
          PERF_COUNT_HW_CACHE_NODE PERF_COUNT_HW_CACHE_OP_READ PERF_COUNT_HW_CACHE_OP_WRITE
          PERF_COUNT_HW_CACHE_OP_PREFETCH PERF_COUNT_HW_CACHE_RESULT_ACCESS
          PERF_COUNT_HW_CACHE_RESULT_MISS PERF_SAMPLE_MAX PERF_SAMPLE_BRANCH_USER
          PERF_SAMPLE_BRANCH_KERNEL PERF_SAMPLE_BRANCH_HV PERF_SAMPLE_BRANCH_ANY
          PERF_SAMPLE_BRANCH_ANY_CALL PERF_SAMPLE_BRANCH_ANY_RETURN PERF_SAMPLE_BRANCH_IND_CALL
          PERF_SAMPLE_BRANCH_ABORT_TX PERF_SAMPLE_BRANCH_IN_TX PERF_SAMPLE_BRANCH_NO_TX
          PERF_SAMPLE_BRANCH_COND PERF_SAMPLE_BRANCH_CALL_STACK PERF_SAMPLE_BRANCH_IND_JUMP
          PERF_SAMPLE_BRANCH_CALL PERF_SAMPLE_BRANCH_NO_FLAGS PERF_SAMPLE_BRANCH_NO_CYCLES
          PERF_SAMPLE_BRANCH_TYPE_SAVE PERF_SAMPLE_BRANCH_HW_INDEX PERF_SAMPLE_BRANCH_PRIV_SAVE
          PERF_SAMPLE_BRANCH_COUNTERS PERF_SAMPLE_BRANCH_MAX PERF_BR_UNKNOWN PERF_BR_COND
          PERF_BR_UNCOND PERF_BR_IND PERF_BR_CALL PERF_BR_IND_CALL PERF_BR_RET PERF_BR_SYSCALL
          PERF_BR_SYSRET PERF_BR_COND_CALL PERF_BR_COND_RET PERF_BR_ERET PERF_BR_IRQ
          PERF_BR_SERROR PERF_BR_NO_TX PERF_BR_EXTEND_ABI PERF_BR_SPEC_NA
          PERF_BR_SPEC_WRONG_PATH PERF_BR_NON_SPEC_CORRECT_PATH PERF_BR_SPEC_CORRECT_PATH
          PERF_BR_NEW_FAULT_ALGN PERF_BR_NEW_FAULT_DATA PERF_BR_NEW_FAULT_INST PERF_BR_NEW_ARCH_1
          PERF_BR_NEW_ARCH_2 PERF_BR_NEW_ARCH_3 PERF_BR_NEW_ARCH_4 PERF_BR_NEW_ARCH_5
          PERF_BR_PRIV_UNKNOWN PERF_BR_PRIV_USER PERF_BR_PRIV_KERNEL PERF_BR_PRIV_HV
          PERF_SAMPLE_REGS_ABI_NONE PERF_SAMPLE_REGS_ABI_32 PERF_SAMPLE_REGS_ABI_64
          PERF_FORMAT_MAX PERF_RECORD_MAX PERF_RECORD_KSYMBOL_TYPE_UNKNOWN
          PERF_RECORD_KSYMBOL_TYPE_BPF PERF_RECORD_KSYMBOL_TYPE_OOL PERF_BPF_EVENT_UNKNOWN
          PERF_BPF_EVENT_PROG_LOAD PERF_BPF_EVENT_PROG_UNLOAD PERF_CONTEXT_HV PERF_CONTEXT_KERNEL
          PERF_CONTEXT_USER PERF_CONTEXT_GUEST PERF_CONTEXT_GUEST_KERNEL PERF_CONTEXT_GUEST_USER
          PERF_CONTEXT_MAX PERF_TXN_ELISION PERF_TXN_TRANSACTION PERF_TXN_SYNC PERF_TXN_ASYNC
          PERF_TXN_RETRY PERF_TXN_CONFLICT PERF_TXN_CAPACITY_WRITE PERF_TXN_CAPACITY_READ
          PERF_TXN_ABORT_SHIFT HW_BREAKPOINT_EMPTY HW_BREAKPOINT_R HW_BREAKPOINT_W
          HW_BREAKPOINT_RW HW_BREAKPOINT_X HW_BREAKPOINT_LEN_1 HW_BREAKPOINT_LEN_2
          HW_BREAKPOINT_LEN_4 HW_BREAKPOINT_LEN_8
        `),
        ...same(...w`
          PERF_PMU_TYPE_SHIFT PERF_HW_EVENT_MASK PERF_RECORD_MISC_CPUMODE_UNKNOWN
          PERF_RECORD_MISC_HYPERVISOR PERF_RECORD_MISC_GUEST_KERNEL PERF_RECORD_MISC_GUEST_USER
          PERF_RECORD_MISC_PROC_MAP_PARSE_TIMEOUT PERF_RECORD_MISC_MMAP_DATA
          PERF_RECORD_MISC_COMM_EXEC PERF_RECORD_MISC_FORK_EXEC PERF_RECORD_MISC_SWITCH_OUT
          PERF_RECORD_MISC_EXACT_IP PERF_RECORD_MISC_SWITCH_OUT_PREEMPT
          PERF_RECORD_MISC_MMAP_BUILD_ID PERF_RECORD_MISC_EXT_RESERVED
          PERF_RECORD_KSYMBOL_FLAGS_UNREGISTER PERF_MAX_STACK_DEPTH PERF_MAX_CONTEXTS_PER_STACK
          PERF_AUX_FLAG_TRUNCATED PERF_AUX_FLAG_OVERWRITE PERF_AUX_FLAG_PARTIAL
          PERF_AUX_FLAG_COLLISION PERF_AUX_FLAG_PMU_FORMAT_TYPE_MASK
        `),
        ...offsets(
          "PERF_EVENT_QUERY_BPF_OFF",
          "struct perf_event_query_bpf",
          w`ids_len prog_cnt ids`,
        ),
        // The precise_ip bitfield's first bit (the mask's lowest set bit).
        [
          "PERF_ATTR_PRECISE_IP_SHIFT",
          `__builtin_ctzll(BITFIELD_MASK(struct perf_event_attr, precise_ip, ${PERF_FLAGS_WORD}))`,
          { guard: "1" },
        ],
        // aux_action's bits (6.13; in the 6.12.y headers).
        ...(["START_PAUSED", "PAUSE", "RESUME"] as const).map((b) =>
          [
            `PERF_ATTR_AUX_${b}`,
            `BITFIELD_MASK(struct perf_event_attr, aux_${b.toLowerCase()}, offsetof(struct perf_event_attr, aux_action))`,
            { guard: since(6, 12) },
          ] as const
        ),
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
};
