import { readFileSync } from "node:fs";

/**
 * Peak RSS of this process image, in bytes. Linux's `VmHWM` is per address space, so it starts
 * afresh at exec; `getrusage().ru_maxrss` (Node's `maxRSS`) instead keeps the high-water mark of
 * the process that forked us, which hides a small child behind a large parent.
 */
export function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match) return Number(match[1]) * 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS * 1024;
}
