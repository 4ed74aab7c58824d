/**
 * ffi/user_events.ts against <linux/user_events.h>.
 */
import { type ModuleSpec, offsets, same, since, w } from "./spec.ts";

export const USER_EVENTS: ModuleSpec = {
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
};
