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
};
