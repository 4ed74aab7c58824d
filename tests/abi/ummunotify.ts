/**
 * ffi/ummunotify.ts against this repository's kmod/ummunotify/ummunotify.h,
 * with the numbers pinned to the 2010 ummunotify ABI.
 */
import type { ModuleSpec } from "./spec.ts";

export const UMMUNOTIFY: ModuleSpec = {
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
};
