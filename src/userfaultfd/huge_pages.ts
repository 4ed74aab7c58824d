/** The huge page sizes this kernel supports (/sys/kernel/mm/hugepages/hugepages-<N>kB). */
import { readdirSync } from "node:fs";

let sizes: number[] | null = null;

/** Every supported huge page size in bytes (empty without hugetlb or permission to look). */
export function hugePageSizes(): number[] {
  if (sizes === null) {
    try {
      sizes = readdirSync("/sys/kernel/mm/hugepages")
        .map((d) => /^hugepages-(\d+)kB$/.exec(d))
        .filter((x): x is RegExpExecArray => x !== null)
        .map((x) => Number(x[1]) * 1024);
    } catch {
      sizes = [];
    }
  }
  return sizes;
}
